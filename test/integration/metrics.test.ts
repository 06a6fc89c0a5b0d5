// --prometheus FILE on backup, verify and status: the file parses as the text exposition format
// (a strict parser written here, independent of the one in src/), holds the right values, keeps
// counters across runs, escapes labels, and is replaced atomically.
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { run, url, tmp, createDb } from './helpers.js';
import { manifestKey, verifiedKey } from '../../src/model/keys.js';

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the text format (version 0.0.4): HELP and TYPE at most once per metric and
 * before its samples, a metric's samples together, valid names, only the three escapes in label
 * values, no duplicate series, numeric values, counters named *_total, a final line feed.
 */
function parseExposition(text: string): { series: Series[]; types: Record<string, string>; help: Record<string, string> } {
  const fail = (line: number, why: string): never => {
    throw new Error(`line ${line + 1}: ${why}`);
  };
  if (text !== '' && !text.endsWith('\n')) throw new Error('the file does not end with a line feed');
  const types: Record<string, string> = {};
  const help: Record<string, string> = {};
  const series: Series[] = [];
  const seen = new Set<string>();
  const done = new Set<string>();
  let current: string | null = null;
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, n) => {
    let m: RegExpExecArray | null;
    if ((m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line))) {
      const [, kind, name, rest] = m;
      if (done.has(name!) || (current !== null && current !== name && series.some((s) => s.name === name))) fail(n, `${kind} of ${name} after its samples`);
      if (kind === 'HELP') {
        if (name! in help) fail(n, `second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest!)) fail(n, 'bad escape in HELP');
        help[name!] = rest!;
      } else {
        if (name! in types) fail(n, `second TYPE for ${name}`);
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(rest!)) fail(n, `unknown type ${rest}`);
        types[name!] = rest!;
      }
      if (current !== name) {
        if (current !== null) done.add(current);
        current = name!;
      }
      return;
    }
    if (line.startsWith('#') || line.trim() === '') return;
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)(?: (-?\d+))?$/.exec(line);
    if (!m) return fail(n, `not a sample: ${line}`);
    const [, name, body, raw] = m;
    if (done.has(name!)) fail(n, `samples of ${name} are not together`);
    if (current !== name) {
      if (current !== null) done.add(current);
      current = name!;
    }
    if (!(name! in types)) fail(n, `no TYPE before the samples of ${name}`);
    const labels: Record<string, string> = {};
    if (body !== undefined && body !== '') {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
      let pos = 0;
      while (pos < body.length) {
        re.lastIndex = pos;
        const lm = re.exec(body);
        if (!lm) return fail(n, `bad labels: {${body}}`);
        if (lm[1]! in labels) fail(n, `label ${lm[1]} twice`);
        labels[lm[1]!] = lm[2]!.replace(/\\(["\\n])/g, (_x, c: string) => (c === 'n' ? '\n' : c));
        pos = re.lastIndex;
        if (lm[3] === ',' && pos === body.length) fail(n, 'trailing comma');
      }
    }
    if (!/^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/.test(raw!)) fail(n, `not a number: ${raw}`);
    if (types[name!] === 'counter' && !name!.endsWith('_total')) fail(n, `counter ${name} not named *_total`);
    const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(id)) fail(n, `duplicate series ${id}`);
    seen.add(id);
    series.push({ name: name!, labels, value: Number(raw) });
  });
  return { series, types, help };
}

function value(file: string, name: string, labels: Record<string, string>): number | undefined {
  const { series } = parseExposition(readFileSync(file, 'utf8'));
  const hits = series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${hits.length} series of ${name} match ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}

describe('the strict exposition parser of this test', () => {
  it('rejects what the format forbids', () => {
    expect(() => parseExposition('x 1\n')).toThrow(/no TYPE/);
    expect(() => parseExposition('# TYPE x gauge\nx{a="b\\q"} 1\n')).toThrow(/bad labels/);
    expect(() => parseExposition('# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n')).toThrow(/duplicate/);
    expect(() => parseExposition('# TYPE x counter\nx 1\n')).toThrow(/_total/);
    expect(() => parseExposition('# TYPE x gauge\nx 1')).toThrow(/line feed/);
    expect(() => parseExposition('# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n')).toThrow(/together/);
    expect(parseExposition('# HELP x h\n# TYPE x gauge\nx{a="q\\"\\\\\\n"} 1.5e3\n').series[0]).toEqual({ name: 'x', labels: { a: 'q"\\\n' }, value: 1500 });
  });
});

describe('--prometheus', () => {
  const DB = 'mx_app';
  const WEIRD = 'mx "q" \\ b';
  let dir: string;
  let prom: string;
  let target: string;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    await createDb(DB, 'rich.sql');
    await createDb(WEIRD, 'rich.sql');
    dir = tmp('pgbackup-metrics-');
    target = resolve(dir);
    prom = join(tmp('pgbackup-textfile-'), 'pgbackup.prom');
  });

  it('backup writes the last success, size and duration per database and target; a zero failure counter', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    for (const db of [DB, WEIRD]) {
      const r = await run(['backup', '--database', url(db), '--to', dir, '--no-encryption', '--prometheus', prom]);
      expect(r.code, r.stderr).toBe(0);
      keys[db] = r.stdout.trim();
    }
    const t1 = Math.ceil(Date.now() / 1000);
    const text = readFileSync(prom, 'utf8');
    const parsed = parseExposition(text);
    for (const name of ['pgbackup_last_success_timestamp_seconds', 'pgbackup_last_size_bytes', 'pgbackup_last_duration_seconds', 'pgbackup_failures_total']) {
      expect(parsed.types[name], name).toBeDefined();
      expect(parsed.help[name], name).toBeDefined();
    }
    expect(parsed.types.pgbackup_failures_total).toBe('counter');
    for (const db of [DB, WEIRD]) {
      const l = { database: db, target };
      const ts = value(prom, 'pgbackup_last_success_timestamp_seconds', l)!;
      expect(ts).toBeGreaterThanOrEqual(t0);
      expect(ts).toBeLessThanOrEqual(t1);
      expect(value(prom, 'pgbackup_last_size_bytes', l)).toBe(statSync(join(dir, keys[db]!)).size);
      const manifest = JSON.parse(readFileSync(join(dir, manifestKey(keys[db]!)), 'utf8'));
      expect(value(prom, 'pgbackup_last_duration_seconds', l)).toBe(manifest.durationMs / 1000);
      expect(value(prom, 'pgbackup_failures_total', { ...l, command: 'backup' })).toBe(0);
    }
    // The weird name is escaped in the file and read back as it is.
    expect(text).toContain('database="mx \\"q\\" \\\\ b"');
    // Replaced atomically: nothing but the file itself is left in its folder.
    expect(readdirSync(join(prom, '..'))).toEqual(['pgbackup.prom']);
  });

  it('a failed backup counts, across runs, and leaves the other series alone', async () => {
    const before = readFileSync(prom, 'utf8');
    const successBefore = value(prom, 'pgbackup_last_success_timestamp_seconds', { database: DB, target });
    for (const n of [1, 2]) {
      const r = await run(['backup', '--database', url('mx_nosuchdb'), '--to', dir, '--no-encryption', '--prometheus', prom]);
      expect(r.code).toBe(3);
      expect(value(prom, 'pgbackup_failures_total', { command: 'backup', database: 'mx_nosuchdb', target })).toBe(n);
      expect(value(prom, 'pgbackup_last_failure_timestamp_seconds', { command: 'backup', database: 'mx_nosuchdb', target })).toBeGreaterThan(0);
    }
    expect(value(prom, 'pgbackup_last_success_timestamp_seconds', { database: DB, target })).toBe(successBefore);
    expect(before).not.toContain('mx_nosuchdb');
  });

  it('verify writes the time of the last successful verification; a failed one counts', async () => {
    const v = await run(['verify', keys[DB]!, '--from', dir, '--prometheus', prom]);
    expect(v.code, v.stderr).toBe(0);
    const rec = JSON.parse(readFileSync(join(dir, verifiedKey(keys[DB]!)), 'utf8'));
    expect(value(prom, 'pgbackup_last_verify_timestamp_seconds', { database: DB, target })).toBe(Math.floor(Date.parse(rec.verifiedAt) / 1000));
    expect(value(prom, 'pgbackup_failures_total', { command: 'verify', database: DB, target })).toBe(0);
    const none = await run(['verify', '--latest', '--database', 'mx_nothing', '--from', dir, '--prometheus', prom]);
    expect(none.code).toBe(4);
    expect(value(prom, 'pgbackup_failures_total', { command: 'verify', database: 'mx_nothing', target })).toBe(1);
  });

  it('status writes the same values from the target, and keeps the counters of earlier runs', async () => {
    const fresh = join(tmp('pgbackup-textfile-'), 'status.prom');
    const s = await run(['status', '--from', dir, '--prometheus', fresh]);
    expect(s.code, s.stderr).toBe(0);
    for (const db of [DB, WEIRD]) {
      const l = { database: db, target };
      const manifest = JSON.parse(readFileSync(join(dir, manifestKey(keys[db]!)), 'utf8'));
      expect(value(fresh, 'pgbackup_last_success_timestamp_seconds', l)).toBe(Math.floor(Date.parse(manifest.finishedAt) / 1000));
      expect(value(fresh, 'pgbackup_last_size_bytes', l)).toBe(manifest.sizes.stored);
      expect(value(fresh, 'pgbackup_last_duration_seconds', l)).toBe(manifest.durationMs / 1000);
    }
    const rec = JSON.parse(readFileSync(join(dir, verifiedKey(keys[DB]!)), 'utf8'));
    expect(value(fresh, 'pgbackup_last_verify_timestamp_seconds', { database: DB, target })).toBe(Math.floor(Date.parse(rec.verifiedAt) / 1000));
    expect(value(fresh, 'pgbackup_last_verify_timestamp_seconds', { database: WEIRD, target })).toBeUndefined();
    // Into the file backup and verify wrote: their counters stay.
    const s2 = await run(['status', '--from', dir, '--prometheus', prom, '--json']);
    expect(s2.code).toBe(0);
    expect(value(prom, 'pgbackup_failures_total', { command: 'backup', database: 'mx_nosuchdb', target })).toBe(2);
    expect(value(prom, 'pgbackup_failures_total', { command: 'verify', database: 'mx_nothing', target })).toBe(1);
    parseExposition(readFileSync(prom, 'utf8'));
  });

  it('refuses a file name the collector would not read, and fails status when the file cannot be written', async () => {
    const r = await run(['status', '--from', dir, '--prometheus', join(dir, 'x.txt')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('.prom');
    const w = await run(['status', '--from', dir, '--prometheus', join(dir, 'no/such/folder/x.prom')]);
    expect(w.code).toBe(4);
    expect(w.stderr).toContain('cannot write the metrics file');
    // A backup whose metrics cannot be written still succeeds, saying so.
    const b = await run(['backup', '--database', url(DB), '--to', dir, '--no-encryption', '--prometheus', join(dir, 'no/such/folder/x.prom')]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toContain('could not write the metrics file');
  });
});
