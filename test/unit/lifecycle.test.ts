import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { lifecycleRules, mergeRules, ruleDifferences, ruleMeaning, ABORT_DAYS, NONCURRENT_DAYS } from '../../src/model/lifecycle.js';
import { retentionConfig } from '../../src/config/config.js';
import { DEFAULT_RETENTION } from '../../src/model/lifecycle.js';
import type { Node } from 'web-tree-sitter';
import { attrExpr, blockLabels, blockType, evaluate, nestedBlocks, parseHcl, topBlocks, type Block, type Value } from '../support/hcl.js';

const TF = resolve(__dirname, '../../infra/terraform');
const EXAMPLES = resolve(__dirname, '../../infra/examples');

/**
 * The Terraform module as Terraform reads it (test/support/hcl.ts): its variables' defaults
 * (or the values given), its locals, and the rules of its aws_s3_bucket_lifecycle_configuration
 * evaluated, dynamic blocks expanded.
 */
async function tfModule(values: Record<string, Value> = {}) {
  const vars: Record<string, Value> = {};
  for (const b of topBlocks(await parseHcl(join(TF, 'variables.tf')))) {
    const d = blockType(b) === 'variable' ? attrExpr(b, 'default') : undefined;
    if (d) vars[blockLabels(b)[0]!] = evaluate(d, { vars: {}, locals: {} });
  }
  Object.assign(vars, values);
  const main = topBlocks(await parseHcl(join(TF, 'main.tf')));
  const locals: Record<string, Node> = {};
  for (const b of main.filter((x) => blockType(x) === 'locals')) {
    for (const a of b.namedChildren.find((c) => c?.type === 'body')!.namedChildren) {
      if (a?.type === 'attribute') locals[a.namedChildren[0]!.text] = a.namedChildren.find((c) => c?.type === 'expression')!;
    }
  }
  const lc = main.find((b) => blockType(b) === 'resource' && blockLabels(b)[0] === 'aws_s3_bucket_lifecycle_configuration');
  expect(lc, 'main.tf declares an aws_s3_bucket_lifecycle_configuration').toBeDefined();
  // Its rules only: the resource's own attributes name other resources, which only a plan knows.
  return { vars, rules: nestedBlocks(lc!, 'rule', { vars, locals }) };
}

/**
 * The rules as the AWS provider sends them (PutBucketLifecycleConfiguration): each block and
 * attribute under its API name (snake_case to PascalCase, id as ID), a `tags` map as a list of
 * Key/Value pairs. A nested block that appears twice is not a lifecycle rule's: it throws.
 */
function apiShape(b: Block): Record<string, unknown> {
  const pascal = (s: string) => (s === 'id' ? 'ID' : s.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase()));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(b.attrs)) {
    if (v === null) continue; // unset, as the provider leaves it out
    out[pascal(k)] = k === 'tags' ? Object.entries(v as Record<string, Value>).map(([Key, Value]) => ({ Key, Value })) : v;
  }
  for (const c of b.blocks) {
    const k = pascal(c.type);
    if (k in out) throw new Error(`two ${c.type} blocks in one ${b.type}`);
    out[k] = apiShape(c);
  }
  return out;
}

/** The module's lifecycle rules, in the API's shape, in ID order. */
async function tfRules(values: Record<string, Value> = {}): Promise<Array<Record<string, unknown>>> {
  return (await tfModule(values)).rules.map(apiShape).sort(byId);
}

const byId = (a: { ID?: unknown }, b: { ID?: unknown }) => String(a.ID).localeCompare(String(b.ID));

describe('lifecycle rules', () => {
  it('equal the rules the Terraform module declares, as Terraform reads it (defaults, a prefix, other days)', async () => {
    const ours = (prefix: string, days = DEFAULT_RETENTION) => [...lifecycleRules(prefix, days)].sort(byId);
    expect(await tfRules({ prefix: 'prod/' })).toEqual(ours('prod/'));
    expect(await tfRules()).toEqual(ours(''));
    // Other days, set on both sides: every variable reaches its rule.
    const days = retentionConfig({ PGBACKUP_KEEP_DAILY_DAYS: '3', PGBACKUP_KEEP_WEEKLY_DAYS: '21', PGBACKUP_KEEP_MONTHLY_DAYS: '100', PGBACKUP_KEEP_YEARLY_DAYS: '1000' });
    expect(await tfRules({ prefix: 'staging/', keep_daily_days: 3, keep_weekly_days: 21, keep_monthly_days: 100, keep_yearly_days: 1000 })).toEqual(ours('staging/', days));
    const { vars } = await tfModule();
    expect([vars.keep_daily_days, vars.keep_weekly_days, vars.keep_monthly_days, vars.keep_yearly_days]).toEqual([7, 35, 400, 3650]);
    expect([vars.keep_daily_days, vars.keep_weekly_days, vars.keep_monthly_days, vars.keep_yearly_days]).toEqual([DEFAULT_RETENTION.daily, DEFAULT_RETENTION.weekly, DEFAULT_RETENTION.monthly, DEFAULT_RETENTION.yearly]);
    expect(vars.abort_incomplete_upload_days).toBe(ABORT_DAYS);
    expect(vars.noncurrent_version_days).toBe(NONCURRENT_DAYS);
  });
  it('follow the retention settings', () => {
    const days = retentionConfig({ PGBACKUP_KEEP_DAILY_DAYS: '3' });
    expect(lifecycleRules('', days)[0]).toMatchObject({ ID: 'pgbackup-daily', Expiration: { Days: 3 } });
    expect(() => retentionConfig({ PGBACKUP_KEEP_WEEKLY_DAYS: 'lots' })).toThrow(/PGBACKUP_KEEP_WEEKLY_DAYS/);
  });
  it('merging keeps rules that are not ours and replaces ours', () => {
    const merged = mergeRules([{ ID: 'logs-expiry' }, { ID: 'pgbackup-daily' }], lifecycleRules('', DEFAULT_RETENTION));
    expect(merged.map((r) => r.ID)).toEqual(['logs-expiry', 'pgbackup-daily', 'pgbackup-weekly', 'pgbackup-monthly', 'pgbackup-yearly', 'pgbackup-abort-incomplete-uploads', 'pgbackup-noncurrent-versions']);
  });
  it('rule IDs carry the prefix; merging one prefix keeps the other prefixes\' rules and replaces its own old fixed-ID ones', () => {
    const prod = lifecycleRules('prod/', DEFAULT_RETENTION);
    expect(prod.map((r) => r.ID)).toEqual(['daily', 'weekly', 'monthly', 'yearly', 'abort-incomplete-uploads', 'noncurrent-versions'].map((n) => `pgbackup-prod/${n}`));
    const staging = lifecycleRules('staging/', DEFAULT_RETENTION);
    const both = mergeRules(mergeRules([{ ID: 'logs-expiry' }], prod, 'prod/'), staging, 'staging/');
    expect(both.map((r) => r.ID)).toEqual(['logs-expiry', ...prod.map((r) => r.ID), ...staging.map((r) => r.ID)]);
    expect(ruleDifferences(both as never, prod)).toEqual([]);
    expect(ruleDifferences(both as never, staging)).toEqual([]);
    // Rules written with the old fixed IDs for prod/: applying staging/ keeps them, applying prod/ replaces them.
    const legacy = prod.map((r) => ({ ...r, ID: r.ID.replace('prod/', '') }));
    expect(mergeRules(legacy, staging, 'staging/').map((r) => r.ID)).toEqual([...legacy.map((r) => r.ID), ...staging.map((r) => r.ID)]);
    expect(mergeRules(legacy, prod, 'prod/').map((r) => r.ID)).toEqual(prod.map((r) => r.ID));
  });
  it('spots missing and different rules', () => {
    const wanted = lifecycleRules('', DEFAULT_RETENTION);
    expect(ruleDifferences(wanted as never, wanted)).toEqual([]);
    const changed = JSON.parse(JSON.stringify(wanted));
    changed[0].Expiration.Days = 1;
    changed.pop();
    const d = ruleDifferences(changed, wanted);
    expect(d).toHaveLength(2);
    expect(d.join()).toContain('pgbackup-daily differs');
    expect(d.join()).toContain('pgbackup-noncurrent-versions is missing');
  });
  it('compares rules by meaning: the filter forms servers answer with, tag order, defaults, rule order', () => {
    const wanted = lifecycleRules('prod/', DEFAULT_RETENTION);
    // As Ceph RGW answers them: {Prefix, Tag} for a one-tag And, a top-level Prefix for Prefix "",
    // ExpiredObjectDeleteMarker false left out, and the rules in another order.
    const rgw = wanted
      .map((r) => {
        type F = { And?: { Prefix: string; Tags: Array<{ Key: string; Value: string }> }; Prefix?: string; Tag?: { Key: string; Value: string } };
        const x = JSON.parse(JSON.stringify(r)) as Record<string, unknown> & { Filter: F };
        if (x.Filter.And) x.Filter = { Prefix: x.Filter.And.Prefix, Tag: x.Filter.And.Tags[0]! };
        return x;
      })
      .reverse();
    expect(ruleDifferences(rgw, wanted)).toEqual([]);
    const root = lifecycleRules('', DEFAULT_RETENTION);
    const legacyPrefix = root.map((r) => (r.Filter.Prefix === '' ? { ...r, Filter: undefined, Prefix: '' } : r));
    expect(ruleDifferences(legacyPrefix as never, root)).toEqual([]);
    expect(ruleMeaning({ Filter: { And: { Prefix: 'p/', Tags: [{ Key: 'a', Value: '1' }, { Key: 'b', Value: '2' }] } }, Expiration: { Days: 3 } })).toBe(
      ruleMeaning({ Status: 'Enabled', Filter: { And: { Prefix: 'p/', Tags: [{ Key: 'b', Value: '2' }, { Key: 'a', Value: '1' }] } }, Expiration: { Days: 3, ExpiredObjectDeleteMarker: false } }),
    );
    // A different meaning still differs: another tag, another prefix, another day count.
    const off = JSON.parse(JSON.stringify(rgw));
    off.find((r: { ID: string }) => r.ID === 'pgbackup-prod/daily').Filter.Tag.Value = 'weekly';
    expect(ruleDifferences(off, wanted).join()).toMatch(/differs/);
    const otherPrefix = JSON.parse(JSON.stringify(rgw));
    otherPrefix.find((r: { ID: string }) => r.ID === 'pgbackup-prod/monthly').Filter.Prefix = 'staging/';
    expect(ruleDifferences(otherPrefix, wanted).join()).toMatch(/differs/);
  });
});

describe('infra files', () => {
  // `terraform fmt -check` cannot run here: Terraform is in neither the npm registry nor
  // Debian's packages, so the machines that run these tests lack it. Every .tf file is parsed
  // instead, as above: a syntax error fails with its line.
  it('every Terraform file is valid HCL', async () => {
    const files = readdirSync(TF, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.tf'));
    expect(files).toEqual(expect.arrayContaining(['main.tf', 'variables.tf', 'iam.tf', 'outputs.tf', 'versions.tf', 'examples/basic/main.tf']));
    for (const f of files) await parseHcl(join(TF, f));
  });
  it('example YAML files parse', () => {
    const files = ['kubernetes/cronjob.yaml', 'ci/backup.yml'];
    for (const f of files) {
      const docs = parseAllDocuments(readFileSync(join(EXAMPLES, f), 'utf8'));
      for (const d of docs) expect(d.errors, f).toEqual([]);
    }
    const cron = parseAllDocuments(readFileSync(join(EXAMPLES, 'kubernetes/cronjob.yaml'), 'utf8')).map((d) => d.toJS());
    const job = cron.find((d) => d.kind === 'CronJob');
    expect(job.spec.concurrencyPolicy).toBe('Forbid');
    const ci = parseYaml(readFileSync(join(EXAMPLES, 'ci/backup.yml'), 'utf8'));
    expect(ci.on.schedule[0].cron).toBeTruthy();
    expect(readdirSync(join(EXAMPLES, 'systemd')).sort()).toEqual(['pgbackup.service', 'pgbackup.timer']);
  });
});
