import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  PG, run, url, tmp, createDb, dropDb, snapshot, psqlEnv, s3keys, s3get, s3put, s3del, newIdentity, needCommand, filesUnder, sql, ROOT,
} from './helpers.js';

const SRC = 'rs_src';
let dir: string;
let id: { file: string; recipient: string };
let other: { file: string; recipient: string };
let s3key: string; // relative to s3://backups/rs/
let folder: string;
let folderKey: string;

beforeAll(async () => {
  dir = tmp();
  id = await newIdentity(dir);
  other = await newIdentity(dir);
  await createDb(SRC, 'rich.sql');
  const a = await run(['backup', '--database', url(SRC), '--to', 's3://backups/rs/', '--recipient', id.recipient]);
  expect(a.code, a.stderr).toBe(0);
  s3key = a.stdout.trim().slice('rs/'.length);
  folder = tmp();
  const b = await run(['backup', '--database', url(SRC), '--to', folder, '--recipient', id.recipient]);
  expect(b.code, b.stderr).toBe(0);
  folderKey = b.stdout.trim();
});

/** A target with known contents, to check it is untouched after a failed restore. */
async function occupiedTarget(name: string): Promise<Record<string, string[]>> {
  await createDb(name);
  await sql(name, `CREATE TABLE keepme (v text); INSERT INTO keepme VALUES ('precious'), ('data')`);
  return snapshot(name);
}

describe('restore', () => {
  it('round trip through S3 with --latest and --create, table by table', async () => {
    await dropDb('rs_dest1');
    const r = await run(['restore', '--latest', '--database', SRC, '--from', 's3://backups/rs/', '--to', url('rs_dest1'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('row counts match');
    expect(await snapshot('rs_dest1')).toEqual(await snapshot(SRC));
  });

  it('round trip through a folder by KEY', async () => {
    await createDb('rs_dest2');
    const r = await run(['restore', folderKey, '--from', folder, '--to', url('rs_dest2'), '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await snapshot('rs_dest2')).toEqual(await snapshot(SRC));
  });

  it('a wrong identity exits 5 before the target is touched (not even created)', async () => {
    const before = await occupiedTarget('rs_wrong');
    const r = await run(['restore', s3key, '--from', 's3://backups/rs/', '--to', url('rs_wrong'), '--clean', '--yes', '--identity', other.file]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('no identity matches');
    expect(await snapshot('rs_wrong')).toEqual(before);
    await dropDb('rs_never');
    const r2 = await run(['restore', s3key, '--from', 's3://backups/rs/', '--to', url('rs_never'), '--create', '--identity', other.file]);
    expect(r2.code).toBe(5);
    expect(await sql('postgres', `SELECT 1 FROM pg_database WHERE datname = 'rs_never'`)).toEqual([]);
  });

  for (const [what, damage] of [
    ['cut in half', (b: Buffer) => b.subarray(0, Math.floor(b.length / 2))],
    ['one byte flipped in the middle', (b: Buffer) => {
      const c = Buffer.from(b);
      c[Math.floor(c.length / 2)]! ^= 0x01;
      return c;
    }],
  ] as const) {
    it(`an object ${what} exits 5 and the target is as it was (S3 and folder)`, async () => {
      const good = await s3get('backups', `rs/${s3key}`);
      const bad = damage(good);
      const badKey = s3key.replace(/Z\.sql/, 'Z-9.sql');
      await s3put('backups', `rs/${badKey}`, bad);
      const before = await occupiedTarget('rs_damaged');
      const r = await run(['restore', badKey, '--from', 's3://backups/rs/', '--to', url('rs_damaged'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toMatch(/truncated|tampered|damaged/);
      expect(await snapshot('rs_damaged')).toEqual(before);
      await s3del('backups', `rs/${badKey}`);
      // The same through a folder, from a local file path.
      const f = join(tmp(), 'rs_src_20250101T000000Z.sql.gz.age');
      writeFileSync(f, bad);
      const r2 = await run(['restore', f, '--to', url('rs_damaged'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
      expect(r2.code, r2.stderr).toBe(5);
      expect(await snapshot('rs_damaged')).toEqual(before);
    });
  }

  it('a psql error exits 6 and rolls everything back', async () => {
    const before = await occupiedTarget('rs_psqlerr');
    const r = await run(['restore', join(ROOT, 'test/fixtures/broken.sql'), '--to', url('rs_psqlerr'), '--clean', '--yes', '--no-safety-backup']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('syntax error');
    expect(await snapshot('rs_psqlerr')).toEqual(before);
  });

  it('an existing target needs --clean (and --yes off a terminal); then it is replaced after a safety backup that restores', async () => {
    const before = await occupiedTarget('rs_occupied');
    const r = await run(['restore', s3key, '--from', 's3://backups/rs/', '--to', url('rs_occupied'), '--identity', id.file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--clean');
    const r2 = await run(['restore', s3key, '--from', 's3://backups/rs/', '--to', url('rs_occupied'), '--clean', '--identity', id.file]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('--yes');
    expect(await snapshot('rs_occupied')).toEqual(before);
    const r3 = await run(['restore', s3key, '--from', 's3://backups/rs/', '--to', url('rs_occupied'), '--clean', '--yes', '--identity', id.file]);
    expect(r3.code, r3.stderr).toBe(0);
    expect(await snapshot('rs_occupied')).toEqual(await snapshot(SRC));
    const m = /safety backup: s3:\/\/backups\/rs\/(\S+)/.exec(r3.stderr);
    expect(m, r3.stderr).not.toBeNull();
    const safety = m![1]!;
    expect(await s3keys('backups', `rs/${safety}`)).toEqual([`rs/${safety}`, `rs/${safety}.json`]);
    await dropDb('rs_from_safety');
    const r4 = await run(['restore', safety, '--from', 's3://backups/rs/', '--to', url('rs_from_safety'), '--create', '--identity', id.file]);
    expect(r4.code, r4.stderr).toBe(0);
    expect(await snapshot('rs_from_safety')).toEqual(before);
  });

  it('restores a legacy .sql.gz made by pg_dump | gzip, and a plain .sql', async () => {
    const d = tmp();
    const plain = execFileSync(join(PG().binDir, 'pg_dump'), ['--clean', '--if-exists'], { env: psqlEnv(SRC), maxBuffer: 1 << 28 });
    writeFileSync(join(d, 'old.sql.gz'), gzipSync(plain));
    writeFileSync(join(d, 'old.sql'), plain);
    for (const f of ['old.sql.gz', 'old.sql']) {
      await dropDb('rs_legacy');
      const r = await run(['restore', join(d, f), '--to', url('rs_legacy'), '--create']);
      expect(r.code, r.stderr).toBe(0);
      expect(await snapshot('rs_legacy')).toEqual(await snapshot(SRC));
    }
  });

  it('restores an object made by pg_dump | gzip | age -r with the reference CLI', async () => {
    needCommand('age');
    const d = tmp();
    const f = join(d, 'cli.sql.gz.age');
    execFileSync('sh', ['-c', `"${PG().binDir}/pg_dump" --clean --if-exists | gzip -6 | age -r ${id.recipient} > "${f}"`], { env: psqlEnv(SRC) });
    await dropDb('rs_cli');
    const r = await run(['restore', f, '--to', url('rs_cli'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await snapshot('rs_cli')).toEqual(await snapshot(SRC));
  });

  it('restores a pg_dump 17.6 dump (SET transaction_timeout, \\restrict) into this server', async () => {
    await dropDb('rs_pg17');
    const r = await run(['restore', join(ROOT, 'test/fixtures/pg17-restrict.sql'), '--to', url('rs_pg17'), '--create']);
    expect(r.code, r.stderr).toBe(0);
    const rows = await sql<{ id: number; name: string }>('rs_pg17', 'SELECT id, name FROM items ORDER BY id');
    expect(rows).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'SET transaction_timeout = 0;' },
      { id: 3, name: '\\restrict not a command' },
    ]);
  });

  it('a role the target lacks is fatal without --no-owner (exit 6, rolled back) and not with it', async () => {
    const f = await run(['fetch', s3key, '--from', 's3://backups/rs/', '--identity', id.file]);
    expect(f.code, f.stderr).toBe(0);
    // As if the source had an owner role this cluster does not have.
    const text = f.stdout.replace(/OWNER TO postgres;/g, 'OWNER TO role_that_is_not_here;');
    expect(text).toContain('OWNER TO role_that_is_not_here;');
    const file = join(tmp(), 'owned.sql');
    writeFileSync(file, text);
    await dropDb('rs_owner');
    const r = await run(['restore', file, '--to', url('rs_owner'), '--create']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('role_that_is_not_here');
    // The failed --create restore dropped the database it had created (issue 10).
    expect(await sql('postgres', `SELECT 1 FROM pg_database WHERE datname = 'rs_owner'`)).toEqual([]);
    const r2 = await run(['restore', file, '--to', url('rs_owner'), '--create', '--no-owner']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(await snapshot('rs_owner')).toEqual(await snapshot(SRC));
  });

  it('a manifest that disagrees with the restored row counts exits 7', async () => {
    const f = tmp();
    const r0 = await run(['backup', '--database', url(SRC), '--to', f, '--recipient', id.recipient]);
    const key = r0.stdout.trim();
    const mf = join(f, `${key}.json`);
    const m = JSON.parse(readFileSync(mf, 'utf8'));
    m.tables.find((t: { name: string }) => t.name === 'users').rows = 1;
    writeFileSync(mf, JSON.stringify(m));
    await dropDb('rs_counts');
    const r = await run(['restore', key, '--from', f, '--to', url('rs_counts'), '--create', '--identity', id.file]);
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('public.users');
  });

  it('--latest skips an incomplete backup (no manifest)', async () => {
    const f = tmp();
    const r0 = await run(['backup', '--database', url(SRC), '--to', f, '--recipient', id.recipient]);
    const key = r0.stdout.trim();
    // A newer dump without manifest: what an interrupted run would leave if it could.
    const newer = key.replace(/T(\d{6})Z/, 'T235959Z');
    writeFileSync(join(f, newer), 'garbage');
    const l = await run(['list', '--from', f]);
    expect(l.stdout).toMatch(/incomplete/);
    await dropDb('rs_latest');
    const r = await run(['restore', '--latest', '--database', SRC, '--from', f, '--to', url('rs_latest'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(key);
  });

  it('--at picks the newest backup at or before a time', async () => {
    const r = await run(['restore', '--at', '2001-01-01T00:00:00Z', '--database', SRC, '--from', folder, '--to', url('rs_at'), '--create', '--identity', id.file]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('no complete backup');
  });
});

describe('list', () => {
  it('lists newest first with database, time, size, tier and status; --json', async () => {
    const r = await run(['list', '--from', 's3://backups/rs/', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    const rows = j.backups.filter((b: { database: string }) => b.database === SRC);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows[0]).toMatchObject({ database: SRC, status: 'complete', key: s3key });
    expect(['daily', 'weekly', 'monthly', 'yearly']).toContain(rows[0].tier);
    const times = j.backups.map((b: { time: string }) => b.time);
    expect([...times].sort().reverse()).toEqual(times);
    const t = await run(['list', '--from', 's3://backups/rs/', '--database', SRC]);
    expect(t.stdout).toContain('KEY');
    expect(t.stdout).toContain(s3key);
  });

  it('pages through many backups on S3', async () => {
    // s3rver pages ListObjectsV2 at 1000 keys; put 1100 small fake dumps and their manifests.
    const many = 'many/';
    const puts: Promise<void>[] = [];
    for (let i = 0; i < 1100; i++) {
      const s = String(i).padStart(4, '0');
      const key = `${many}pagedb/2020/01/01/pagedb_20200101T00${s.slice(0, 2)}${s.slice(2)}Z.sql.gz.age`;
      puts.push(s3put('backups', key, Buffer.from('x')));
      if (puts.length >= 50) await Promise.all(puts.splice(0));
    }
    await Promise.all(puts);
    const r = await run(['list', '--from', `s3://backups/${many}`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).backups.length).toBe(1100);
  });
});

describe('fetch', () => {
  it('writes the decrypted SQL to a file and to stdout', async () => {
    const out = join(tmp(), 'dump.sql');
    const r = await run(['fetch', s3key, '--from', 's3://backups/rs/', '--identity', id.file, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toContain('COPY public.users');
    expect(text.trimEnd()).toMatch(/\\unrestrict \S+$|dump complete\n--$/);
    const r2 = await run(['fetch', s3key, '--from', 's3://backups/rs/', '--identity', id.file]);
    expect(r2.stdout).toBe(text);
    const r3 = await run(['fetch', s3key, '--from', 's3://backups/rs/', '--identity', other.file, '-o', join(tmp(), 'x.sql')]);
    expect(r3.code).toBe(5);
    expect(filesUnder(folder).length).toBeGreaterThan(0);
  });
});
