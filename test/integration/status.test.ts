// `pgbackup status` and the verify record: fresh, stale and missing backups with --max-age
// (exit 8), the record verify writes beside the manifest (folder and S3, tagged like the
// manifest), and how list and prune treat it.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, readFileSync, statSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { run, url, tmp, createDb, s3get, s3keys, baseEnv, S3 } from './helpers.js';
// @ts-expect-error plain JS test support
import { startFaultyProxy } from '../support/faulty-proxy.mjs';
import { backupKey, manifestKey, verifiedKey } from '../../src/model/keys.js';
import { buildManifest } from '../../src/model/manifest.js';

const DB = 'st_app';
const DAY = 86_400_000;

interface Status {
  ok: boolean;
  databases: {
    database: string;
    newestFull: { key: string; sizeBytes: number; tier: string; durationMs: number | null; ageSeconds: number } | null;
    newestVerified: { key: string; verifiedAt: string; restored: boolean } | null;
    lastVerifiedAt: string | null;
    trend: { backups: { key: string; sizeBytes: number }[]; changeFromPrevious: number | null };
    counts: { complete: number; incomplete: number };
    stale?: string;
  }[];
}

/** A complete full backup written by hand, dated `time`; an old manifest (no durationMs) unless told. */
function synthetic(dir: string, db: string, time: Date, body = 'x'.repeat(100)): string {
  const key = backupKey('', db, time, { gzip: true, age: false });
  mkdirSync(dirname(join(dir, key)), { recursive: true });
  writeFileSync(join(dir, key), body);
  const m = buildManifest({
    database: db, key, createdAt: time.toISOString().replace(/\.\d{3}Z$/, 'Z'), finishedAt: new Date(time.getTime() + 90_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    toolVersion: 't', serverVersion: '17', pgDumpVersion: '17', pgDumpOptions: ['--format=plain'], level: 6, recipients: [], passphrase: false, encrypted: false,
    sqlBytes: 1, storedBytes: body.length, sha256: '0'.repeat(64), tier: 'daily', tables: [],
  });
  writeFileSync(join(dir, manifestKey(key)), JSON.stringify(m));
  for (const f of [key, manifestKey(key)]) utimesSync(join(dir, f), time, time);
  return key;
}

describe('status and the verify record', () => {
  let dir: string;
  const keys: string[] = [];

  beforeAll(async () => {
    await createDb(DB, 'rich.sql');
    dir = tmp('pgbackup-status-');
    for (let i = 0; i < 2; i++) {
      const r = await run(['backup', '--database', url(DB), '--to', dir, '--no-encryption']);
      expect(r.code, r.stderr).toBe(0);
      keys.push(r.stdout.trim());
    }
  });

  it('shows the newest full backup, its size, tier and duration, and the size trend; fresh passes --max-age', async () => {
    const r = await run(['status', '--from', dir, '--json', '--max-age', '1h']);
    expect(r.code, r.stderr).toBe(0);
    const st = JSON.parse(r.stdout) as Status;
    expect(st.ok).toBe(true);
    expect(st.databases.map((d) => d.database)).toEqual([DB]);
    const d = st.databases[0]!;
    expect(d.newestFull!.key).toBe(keys[1]);
    expect(d.newestFull!.sizeBytes).toBe(statSync(join(dir, keys[1]!)).size);
    const manifest = JSON.parse(readFileSync(join(dir, manifestKey(keys[1]!)), 'utf8'));
    expect(d.newestFull!.tier).toBe(manifest.tier);
    // The manifest records the duration now; status reports it.
    expect(typeof manifest.durationMs).toBe('number');
    expect(d.newestFull!.durationMs).toBe(manifest.durationMs);
    expect(d.trend.backups.map((b) => b.key)).toEqual(keys);
    expect(d.counts).toEqual({ complete: 2, incomplete: 0 });
    expect(d.newestVerified).toBeNull();
    const text = await run(['status', '--from', dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`newest full backup  ${keys[1]}`);
    expect(text.stdout).toContain('newest verified     none');
  });

  it('verify writes its record beside the manifest; status shows it; list and prune treat it as part of the backup', async () => {
    const v = await run(['verify', keys[0]!, '--from', dir]);
    expect(v.code, v.stderr).toBe(0);
    const rec = JSON.parse(readFileSync(join(dir, verifiedKey(keys[0]!)), 'utf8'));
    expect(rec).toMatchObject({ format: 1, key: keys[0], database: DB, kind: 'full', ok: true, exitCode: 0, restored: false });
    expect(Date.now() - Date.parse(rec.verifiedAt)).toBeLessThan(10 * 60_000);
    const st = JSON.parse((await run(['status', '--from', dir, '--json'])).stdout) as Status;
    expect(st.databases[0]!.newestVerified).toMatchObject({ key: keys[0], verifiedAt: rec.verifiedAt });
    expect(st.databases[0]!.lastVerifiedAt).toBe(rec.verifiedAt);
    const l = JSON.parse((await run(['list', '--from', dir, '--json'])).stdout) as { backups: { key: string }[] };
    expect(l.backups.map((b) => b.key).sort()).toEqual([...keys].sort());
    const p = JSON.parse((await run(['prune', '--from', dir, '--json'])).stdout) as { decisions: { key: string; what: string; files: string[] }[] };
    expect(p.decisions.filter((x) => x.what === 'orphan')).toEqual([]);
    expect(p.decisions.find((x) => x.key === keys[0])!.files).toEqual([keys[0], manifestKey(keys[0]!), verifiedKey(keys[0]!)]);
    // A failed verification is recorded as such and does not count as verified.
    const bad = keys[1]!;
    const m = JSON.parse(readFileSync(join(dir, manifestKey(bad)), 'utf8'));
    writeFileSync(join(dir, manifestKey(bad)), JSON.stringify({ ...m, sha256: 'f'.repeat(64) }));
    const v2 = await run(['verify', bad, '--from', dir]);
    expect(v2.code).toBe(7);
    expect(JSON.parse(readFileSync(join(dir, verifiedKey(bad)), 'utf8'))).toMatchObject({ ok: false, exitCode: 7 });
    const st2 = JSON.parse((await run(['status', '--from', dir, '--json'])).stdout) as Status;
    expect(st2.databases[0]!.newestVerified!.key).toBe(keys[0]);
    writeFileSync(join(dir, manifestKey(bad)), JSON.stringify(m));
  });

  it('stale: exit 8 naming the database; a named database without backups: exit 8; no backups at all: exit 8', async () => {
    const old = tmp('pgbackup-status-old-');
    const k1 = synthetic(old, 'olddb', new Date(Date.now() - 3 * DAY));
    synthetic(old, 'olddb', new Date(Date.now() - 4 * DAY), 'y'.repeat(80));
    synthetic(old, 'newdb', new Date(Date.now() - 3600_000));
    const r = await run(['status', '--from', old, '--max-age', '2d', '--json']);
    expect(r.code).toBe(8);
    const st = JSON.parse(r.stdout) as Status;
    expect(st.ok).toBe(false);
    const od = st.databases.find((d) => d.database === 'olddb')!;
    expect(od.stale).toMatch(/3d old .* over --max-age/);
    expect(st.databases.find((d) => d.database === 'newdb')!.stale).toBeUndefined();
    // An old manifest without durationMs: from createdAt and finishedAt.
    expect(od.newestFull).toMatchObject({ key: k1, durationMs: 90_000 });
    expect(od.trend.changeFromPrevious).toBeCloseTo(0.25);
    expect(r.stderr).toContain('olddb');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // Fresh enough with a longer limit, and for the other database alone.
    expect((await run(['status', '--from', old, '--max-age', '4d'])).code).toBe(0);
    expect((await run(['status', '--from', old, '--max-age', '2d', '--database', 'newdb'])).code).toBe(0);
    // A database named with --database that has no backup.
    const m = await run(['status', '--from', old, '--max-age', '4d', '--database', 'newdb', '--database', 'nosuchdb', '--json']);
    expect(m.code).toBe(8);
    expect((JSON.parse(m.stdout) as Status).databases.find((d) => d.database === 'nosuchdb')).toMatchObject({ newestFull: null, stale: 'no complete full backup' });
    // Without --max-age, status only reports.
    expect((await run(['status', '--from', old, '--database', 'nosuchdb'])).code).toBe(0);
    // An empty (or mistyped) target never passes a freshness check.
    const empty = await run(['status', '--from', tmp(), '--max-age', '1d']);
    expect(empty.code).toBe(8);
    expect(empty.stderr).toContain('no backups at all');
    // A bad duration is a usage error.
    const bad = await run(['status', '--from', old, '--max-age', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--max-age');
  });

  it('on S3 the record is tagged with the backup tier, like the manifest, so lifecycle expires it with the dump', async () => {
    // The S3 test server keeps no tags: the tagging header of each PUT is read on the way through.
    const tagged = new Map<string, string | undefined>();
    const proxy = await startFaultyProxy(S3().endpoint, (req: IncomingMessage) => {
      // (A PUT ?tagging is the tool setting tags again after s3rver dropped them: not the creation.)
      if (req.method === 'PUT' && !new URL(req.url!, 'http://x').searchParams.has('tagging')) tagged.set(decodeURIComponent(new URL(req.url!, 'http://x').pathname.replace(/^\/backups\//, '')), req.headers['x-amz-tagging'] as string | undefined);
      return undefined;
    });
    let key: string;
    try {
      const env = baseEnv({ AWS_ENDPOINT_URL_S3: proxy.endpoint });
      const b = await run(['backup', '--database', url(DB), '--to', 's3://backups/status/', '--no-encryption'], { env });
      expect(b.code, b.stderr).toBe(0);
      key = b.stdout.trim();
      const v = await run(['verify', key, '--from', 's3://backups/status/'], { env });
      expect(v.code, v.stderr).toBe(0);
    } finally {
      await proxy.stop();
    }
    const tier = JSON.parse((await s3get('backups', manifestKey(key))).toString()).tier as string;
    expect(tagged.get(manifestKey(key))).toBe(`tier=${tier}`);
    expect(tagged.get(verifiedKey(key))).toBe(`tier=${tier}`);
    expect(await s3keys('backups', 'status/')).toEqual([key, manifestKey(key), verifiedKey(key)].sort());
    const rec = JSON.parse((await s3get('backups', verifiedKey(key))).toString());
    expect(rec.ok).toBe(true);
    const st = JSON.parse((await run(['status', '--from', 's3://backups/status/', '--json', '--max-age', '1h'])).stdout) as Status;
    expect('status/' + st.databases[0]!.newestVerified!.key).toBe(key);
    expect(existsSync(dir)).toBe(true);
  });
});
