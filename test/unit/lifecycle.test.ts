import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { lifecycleRules, mergeRules, ruleDifferences, ruleMeaning, ABORT_DAYS, NONCURRENT_DAYS } from '../../src/model/lifecycle.js';
import { retentionConfig } from '../../src/config/config.js';
import { DEFAULT_RETENTION } from '../../src/model/lifecycle.js';

const TF = resolve(__dirname, '../../infra/terraform');
const EXAMPLES = resolve(__dirname, '../../infra/examples');

/** Read the module's variable defaults (variable "x" { ... default = N ... }). */
function tfDefaults(): Record<string, number> {
  const text = readFileSync(join(TF, 'variables.tf'), 'utf8');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/variable "(\w+)" \{([\s\S]*?)\n\}/g)) {
    const d = /\n\s*default\s*=\s*(\d+)\s*(?:\n|$)/.exec(m[2]!);
    if (d) out[m[1]!] = Number(d[1]);
  }
  return out;
}

/** The rules the module declares, rebuilt from main.tf with the variable defaults. */
function tfRules(prefix: string): unknown[] {
  const main = readFileSync(join(TF, 'main.tf'), 'utf8');
  const vars = tfDefaults();
  const val = (expr: string) => (expr.startsWith('var.') ? vars[expr.slice(4)] : Number(expr));
  const tierBlock = /tier_days = \{([\s\S]*?)\}/.exec(main)![1]!;
  const tiers = [...tierBlock.matchAll(/(\w+)\s*=\s*(var\.\w+|\d+)/g)].map((m) => [m[1]!, val(m[2]!)] as const);
  const lc = main.slice(main.indexOf('resource "aws_s3_bucket_lifecycle_configuration"'));
  expect(lc).toContain('id     = "pgbackup-${var.prefix}${rule.key}"');
  expect(lc).toMatch(/for_each = var\.prefix == "" \? \[\] : \[var\.prefix\][\s\S]*?prefix = and\.value\s*tags = \{\s*tier = rule\.key\s*\}/);
  expect(lc).toMatch(/for_each = var\.prefix == "" \? \[rule\.key\] : \[\][\s\S]*?key\s*= "tier"\s*value = tag\.value/);
  expect(lc).toMatch(/expiration \{\s*days = rule\.value\s*\}/);
  const rules: unknown[] = tiers.map(([tier, days]) => ({
    ID: `pgbackup-${prefix}${tier}`,
    Status: 'Enabled',
    Filter: prefix ? { And: { Prefix: prefix, Tags: [{ Key: 'tier', Value: tier }] } } : { Tag: { Key: 'tier', Value: tier } },
    Expiration: { Days: days },
  }));
  const abort = /id\s*=\s*"pgbackup-\$\{var\.prefix\}(abort-incomplete-uploads)"[\s\S]*?days_after_initiation = (var\.\w+|\d+)/.exec(lc)!;
  rules.push({ ID: `pgbackup-${prefix}${abort[1]}`, Status: 'Enabled', Filter: { Prefix: prefix }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: val(abort[2]!) } });
  const nc = /id\s*=\s*"pgbackup-\$\{var\.prefix\}(noncurrent-versions)"[\s\S]*?noncurrent_days = (var\.\w+|\d+)[\s\S]*?expired_object_delete_marker = true/.exec(lc)!;
  rules.push({ ID: `pgbackup-${prefix}${nc[1]}`, Status: 'Enabled', Filter: { Prefix: prefix }, NoncurrentVersionExpiration: { NoncurrentDays: val(nc[2]!) }, Expiration: { ExpiredObjectDeleteMarker: true } });
  return rules;
}

describe('lifecycle rules', () => {
  it('equal the rules the Terraform module declares (defaults)', () => {
    expect(lifecycleRules('prod/', DEFAULT_RETENTION)).toEqual(tfRules('prod/'));
    expect(lifecycleRules('', DEFAULT_RETENTION)).toEqual(tfRules(''));
    const v = tfDefaults();
    expect([v.keep_daily_days, v.keep_weekly_days, v.keep_monthly_days, v.keep_yearly_days]).toEqual([7, 35, 400, 3650]);
    expect(v.abort_incomplete_upload_days).toBe(ABORT_DAYS);
    expect(v.noncurrent_version_days).toBe(NONCURRENT_DAYS);
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

function hasTerraform(): boolean {
  try {
    execFileSync('terraform', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('infra files', () => {
  it.skipIf(!hasTerraform())('pass terraform fmt -check', () => {
    execFileSync('terraform', ['fmt', '-check', '-recursive', TF], { stdio: 'pipe' });
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
