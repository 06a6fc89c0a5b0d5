// `pgbackup prune` on a folder: a synthetic history of two years (every tier boundary, safety and
// partial backups, incomplete dumps, partial files, stray sidecars), dry run first, then --apply;
// a backup running at the same time; S3 targets refused.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run, url, tmp, createDb, baseEnv, filesUnder } from './helpers.js';
import { backupKey, computeTier, manifestKey, verifiedKey, stamp, type Tier, type TierMark } from '../../src/model/keys.js';
import { buildManifest, type BackupKind } from '../../src/model/manifest.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
// Yearly retention shortened so that its boundary falls inside two years; the others are the defaults.
const DAYS: Record<Tier, number> = { daily: 7, weekly: 35, monthly: 400, yearly: 600 };
const ENV = { PGBACKUP_KEEP_YEARLY_DAYS: String(DAYS.yearly) };
const chain = { gzip: true, age: false };

interface Made {
  files: string[];
  keep: boolean;
  key: string;
}

function put(dir: string, key: string, body: string | Buffer, mtime: Date): void {
  const p = join(dir, key);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, body);
  utimesSync(p, mtime, mtime);
}

/** A backup as `backup` leaves it: the dump, then its manifest (and optionally a verify record). */
function backup(dir: string, db: string, time: Date, o: { tier: Tier; kind?: BackupKind; complete?: boolean; verified?: boolean; mtime?: Date; badManifest?: boolean }): string {
  const key = backupKey('', db, time, chain);
  const mtime = o.mtime ?? new Date(time.getTime() + 60_000);
  put(dir, key, `dump of ${db} at ${stamp(time)}\n`, mtime);
  if (o.complete === false) return key;
  const m = buildManifest({
    database: db, key, createdAt: time.toISOString(), finishedAt: mtime.toISOString(), toolVersion: 't', serverVersion: '17', pgDumpVersion: '17',
    pgDumpOptions: o.kind === 'partial' ? ['--format=plain', '--table=t'] : ['--format=plain'], level: 6, recipients: [], passphrase: false, encrypted: false,
    sqlBytes: 10, storedBytes: 10, sha256: '0'.repeat(64), tier: o.tier, tables: [], kind: o.kind === 'safety' ? 'safety' : undefined,
    safetyFor: o.kind === 'safety' ? { restoring: 'x', database: db, host: 'h' } : undefined,
  });
  put(dir, manifestKey(key), o.badManifest ? '{not json' : JSON.stringify(m), mtime);
  if (o.verified) put(dir, verifiedKey(key), JSON.stringify({ format: 1, key, ok: true, verifiedAt: mtime.toISOString() }), mtime);
  return key;
}

function sidecarsOf(dir: string, key: string): string[] {
  return [key, manifestKey(key), verifiedKey(key)].filter((k) => existsSync(join(dir, k)));
}

/**
 * The history, with what prune must do to each file. Returns every file made and those that must stay.
 * `now` is the test's clock; prune's runs a few seconds later, far from every boundary (30 minutes or more).
 */
function history(dir: string, now: number): Made[] {
  const made: Made[] = [];
  const add = (key: string, keep: boolean) => made.push({ key, files: sidecarsOf(dir, key), keep });
  const base = Math.floor(now / 1000) * 1000;

  // "app": one full backup a day for two years, tiers as `backup` picks them, some verified.
  const marks: TierMark[] = [];
  const app: { key: string; time: Date; tier: Tier }[] = [];
  for (let k = 730; k >= 1; k--) {
    const time = new Date(base - k * DAY - 30 * 60_000);
    const tier = computeTier(time, marks);
    marks.push({ time, tier });
    app.push({ key: backup(dir, 'app', time, { tier, verified: k % 50 === 0 }), time, tier });
  }
  for (const b of app) add(b.key, now - b.time.getTime() <= DAYS[b.tier] * DAY);
  // Every tier boundary, an hour either side (forced tiers, as --tier gives).
  for (const tier of ['daily', 'weekly', 'monthly', 'yearly'] as Tier[]) {
    add(backup(dir, 'edge', new Date(base - DAYS[tier] * DAY + HOUR), { tier }), true);
    add(backup(dir, 'edge', new Date(base - DAYS[tier] * DAY - HOUR - 7000), { tier, verified: true }), false);
  }
  // The newest backup of "edge" is a full daily 1 h old: kept by its tier anyway.
  add(backup(dir, 'edge', new Date(base - HOUR), { tier: 'daily' }), true);
  // Safety and partial backups follow their own tier (daily), whatever period they fell in.
  add(backup(dir, 'app', new Date(base - 3 * DAY - 17_000), { tier: 'daily', kind: 'safety' }), true);
  add(backup(dir, 'app', new Date(base - 10 * DAY - 17_000), { tier: 'daily', kind: 'safety' }), false);
  add(backup(dir, 'app', new Date(base - 40 * DAY - 17_000), { tier: 'daily', kind: 'partial' }), false);
  // A monthly safety backup (forced tier) is kept for the monthly days.
  add(backup(dir, 'app', new Date(base - 100 * DAY - 17_000), { tier: 'monthly', kind: 'safety' }), true);

  // "old": nothing within retention; the newest complete *full* backup stays, newer safety/incomplete ones do not count.
  add(backup(dir, 'old', new Date(base - 500 * DAY), { tier: 'daily' }), false);
  add(backup(dir, 'old', new Date(base - 499 * DAY), { tier: 'daily', verified: true }), true);
  add(backup(dir, 'old', new Date(base - 300 * DAY), { tier: 'daily', kind: 'safety' }), false);
  add(backup(dir, 'old', new Date(base - 200 * DAY), { tier: 'daily', complete: false }), false);
  // An unreadable manifest: tier unknown, kept.
  add(backup(dir, 'old', new Date(base - 450 * DAY), { tier: 'daily', badManifest: true }), true);

  // Incomplete dumps: idle for days (deleted); started two days ago but written to just now (a long
  // backup finishing: kept); started now (kept).
  add(backup(dir, 'app', new Date(base - 3 * DAY), { tier: 'daily', complete: false }), false);
  add(backup(dir, 'app', new Date(base - 2 * DAY), { tier: 'daily', complete: false, mtime: new Date(now - 60_000) }), true);
  add(backup(dir, 'app', new Date(base - 5000), { tier: 'daily', complete: false, mtime: new Date(now) }), true);
  // Partial files: idle for two days (deleted), being written (kept).
  const today = dirname(backupKey('', 'app', new Date(base), chain));
  put(dir, `${today}/.0123456789ab.partial`, 'x', new Date(now - 2 * DAY));
  made.push({ key: `${today}/.0123456789ab.partial`, files: [`${today}/.0123456789ab.partial`], keep: false });
  put(dir, `${today}/.abcdef012345.partial`, 'x', new Date(now));
  made.push({ key: `${today}/.abcdef012345.partial`, files: [`${today}/.abcdef012345.partial`], keep: true });
  // A manifest and a verify record whose dump is gone (an interrupted prune): old ones go, a fresh one stays.
  const orphan = backupKey('', 'app', new Date(base - 20 * DAY), chain);
  put(dir, manifestKey(orphan), '{}', new Date(now - 20 * DAY));
  put(dir, verifiedKey(orphan), '{}', new Date(now - 20 * DAY));
  made.push({ key: manifestKey(orphan), files: [manifestKey(orphan)], keep: false }, { key: verifiedKey(orphan), files: [verifiedKey(orphan)], keep: false });
  const orphan2 = backupKey('', 'app', new Date(base - 21 * DAY), chain);
  put(dir, manifestKey(orphan2), '{}', new Date(now));
  made.push({ key: manifestKey(orphan2), files: [manifestKey(orphan2)], keep: true });
  // Files that are not backups are never touched.
  put(dir, 'README.txt', 'mine', new Date(now - 900 * DAY));
  put(dir, 'app/2020/old-dump.sql', 'mine', new Date(now - 900 * DAY));
  put(dir, 'app/2020/.hidden', 'mine', new Date(now - 900 * DAY));
  made.push(...['README.txt', 'app/2020/old-dump.sql', 'app/2020/.hidden'].map((k) => ({ key: k, files: [k], keep: true })));
  return made;
}

describe('prune', () => {
  let dir: string;
  let made: Made[];
  let before: string[];

  beforeAll(() => {
    dir = tmp('pgbackup-prune-');
    made = history(dir, Date.now());
    before = filesUnder(dir);
    expect(before.length).toBeGreaterThan(1500);
  });

  it('without --apply deletes nothing and names exactly what it would delete, with reasons', async () => {
    const r = await run(['prune', '--from', dir, '--json'], { env: baseEnv(ENV) });
    expect(r.stderr.includes('"level":50')).toBe(false);
    expect(r.code).toBe(0);
    expect(filesUnder(dir)).toEqual(before);
    // JSON logs carry ISO 8601 times.
    const log = JSON.parse(r.stderr.split('\n').find((l) => l.startsWith('{'))!) as { time: unknown };
    expect(log.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const j = JSON.parse(r.stdout) as { applied: boolean; decisions: { key: string; action: string; reason: string; files: string[] }[] };
    expect(j.applied).toBe(false);
    const wouldDelete = j.decisions.filter((d) => d.action === 'delete').flatMap((d) => d.files).sort();
    expect(wouldDelete).toEqual(made.filter((m) => !m.keep).flatMap((m) => m.files).sort());
    for (const d of j.decisions) expect(d.reason.length).toBeGreaterThan(10);
    const newest = j.decisions.find((d) => d.key.startsWith('old/') && d.reason.includes('newest complete full backup'));
    expect(newest?.action).toBe('keep');
    // The text form says the same and that nothing was deleted.
    const t = await run(['prune', '--from', dir], { env: baseEnv(ENV) });
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/dry run: would delete .*Nothing was deleted: run with --apply/);
    expect(t.stdout.match(/^DELETE /gm)?.length).toBe(j.decisions.filter((d) => d.action === 'delete').length);
    expect(filesUnder(dir)).toEqual(before);
  });

  it('--database limits the run to that database', async () => {
    const r = await run(['prune', '--from', dir, '--database', 'old', '--json'], { env: baseEnv(ENV) });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { decisions: { key: string }[] };
    expect(j.decisions.length).toBe(5);
    expect(j.decisions.every((d) => d.key.startsWith('old/'))).toBe(true);
  });

  it('--apply keeps exactly the expected set', async () => {
    const r = await run(['prune', '--from', dir, '--apply'], { env: baseEnv(ENV) });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^deleted \d+ backup\(s\) past their retention, 2 incomplete dump\(s\), 1 partial file\(s\), 2 stray sidecar\(s\)/m);
    const want = made.filter((m) => m.keep).flatMap((m) => m.files).sort();
    expect(filesUnder(dir)).toEqual(want);
    // Empty folders of days long over are gone; the database folders stay.
    expect(existsSync(join(dir, 'old/2025')) || existsSync(join(dir, 'old'))).toBe(true);
    // A second run finds nothing more to delete.
    const again = await run(['prune', '--from', dir, '--apply', '--json'], { env: baseEnv(ENV) });
    expect(JSON.parse(again.stdout).summary).toMatchObject({ backups: 0, incomplete: 0, partials: 0, orphans: 0 });
  });

  it('a folder that does not exist (a typo, an unmounted volume) is an error, exit 4, not "nothing to prune"', async () => {
    const r = await run(['prune', '--from', join(dir, 'no-such-folder'), '--apply']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain('no such folder');
  });

  it('refuses an S3 target with a pointer to bucket lifecycle (exit 2)', async () => {
    const r = await run(['prune', '--from', 's3://some-bucket/prod/']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pgbackup bucket lifecycle --to s3://some-bucket/prod/ --apply');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('deletes nothing of a backup running at the same time', async () => {
    const DB = 'prune_live';
    await createDb(DB, 'rich.sql');
    const live = tmp('pgbackup-prune-live-');
    // Old backups to prune while the new ones are written.
    const now = Date.now();
    for (let k = 0; k < 30; k++) backup(live, DB, new Date(now - (20 + k) * DAY), { tier: 'daily' });
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) {
      const pruning = (async () => {
        const out: number[] = [];
        for (let j = 0; j < 3; j++) out.push((await run(['prune', '--from', live, '--apply'])).code ?? -1);
        return out;
      })();
      const [b, p] = await Promise.all([run(['backup', '--database', url(DB), '--to', live, '--no-encryption']), pruning]);
      expect(b.code, b.stderr).toBe(0);
      expect(p).toEqual([0, 0, 0]);
      keys.push(b.stdout.trim());
    }
    expect((await run(['prune', '--from', live, '--apply'])).code).toBe(0);
    for (const k of keys) {
      expect(existsSync(join(live, k)), k).toBe(true);
      expect(existsSync(join(live, manifestKey(k))), k).toBe(true);
      const v = await run(['verify', k, '--from', live]);
      expect(v.code, v.stderr).toBe(0);
    }
    // The old ones are gone, only the new ones left.
    expect(filesUnder(live).filter((f) => f.endsWith('.sql.gz')).sort()).toEqual([...keys].sort());
  });
});
