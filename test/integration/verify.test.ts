import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { run, url, tmp, createDb, s3get, s3put, newIdentity, sql, fakeBinDir, baseEnv } from './helpers.js';
import { makeHeader, AgeEncryptStream } from '../../src/crypto/age.js';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const SRC = 'vf_src';
let id: { file: string; recipient: string };
let folder: string;
let key: string;
let s3key: string;

async function ageEncrypt(plain: Buffer, recipient: string): Promise<Buffer> {
  const { header, fileKey } = await makeHeader({ recipients: [recipient] });
  const enc = new AgeEncryptStream(header, fileKey);
  const parts: Buffer[] = [];
  enc.on('data', (c: Buffer) => parts.push(c));
  await pipeline(Readable.from([plain]), enc);
  return Buffer.concat(parts);
}

/** A copy of the good backup under a new key in a new folder, with its manifest, to damage. */
function copy(name: string): { dir: string; key: string; file: string; manifest: string } {
  const dir = tmp();
  const k = key;
  execFileSync('mkdir', ['-p', join(dir, k, '..')]);
  writeFileSync(join(dir, k), readFileSync(join(folder, k)));
  writeFileSync(join(dir, `${k}.json`), readFileSync(join(folder, `${k}.json`)));
  void name;
  return { dir, key: k, file: join(dir, k), manifest: join(dir, `${k}.json`) };
}

beforeAll(async () => {
  id = await newIdentity(tmp());
  await createDb(SRC, 'rich.sql');
  folder = tmp();
  const r = await run(['backup', '--database', url(SRC), '--to', folder, '--recipient', id.recipient]);
  expect(r.code, r.stderr).toBe(0);
  key = r.stdout.trim();
  const s = await run(['backup', '--database', url(SRC), '--to', 's3://backups/vf/', '--recipient', id.recipient]);
  expect(s.code, s.stderr).toBe(0);
  s3key = s.stdout.trim().slice(3);
});

describe('verify', () => {
  it('a good backup verifies, from a folder and from S3; --json reports every check', async () => {
    const r = await run(['verify', key, '--from', folder, '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    for (const c of ['manifest', 'age', 'gzip', 'sha256', 'size', 'completion marker', 'row counts']) expect(r.stdout).toContain(`✓ ${c}`);
    const j = await run(['verify', '--latest', '--database', SRC, '--from', 's3://backups/vf/', '--identity', id.file, '--json']);
    expect(j.code, j.stderr).toBe(0);
    const rep = JSON.parse(j.stdout);
    expect(rep.ok).toBe(true);
    expect(rep.backups[0].key).toContain(s3key);
    expect(rep.backups[0].checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
  });

  it('one flipped byte in the middle: exit 5, naming the age chunk', async () => {
    const c = copy('flip');
    const b = readFileSync(c.file);
    b[Math.floor(b.length / 2)]! ^= 0x10;
    writeFileSync(c.file, b);
    const r = await run(['verify', c.key, '--from', c.dir, '--identity', id.file]);
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/✗ age: .*chunk \d+ failed authentication/);
  });

  it('the object cut short: exit 5', async () => {
    const c = copy('cut');
    const b = readFileSync(c.file);
    writeFileSync(c.file, b.subarray(0, b.length - 1000));
    const r = await run(['verify', c.key, '--from', c.dir, '--identity', id.file]);
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/truncated/);
  });

  it('the manifest deleted: exit 7, "manifest"', async () => {
    const c = copy('nomanifest');
    unlinkSync(c.manifest);
    const r = await run(['verify', c.key, '--from', c.dir, '--identity', id.file]);
    expect(r.code).toBe(7);
    expect(r.stdout).toMatch(/✗ manifest: no manifest/);
  });

  it("the manifest's sha256 altered: exit 7, \"sha256\"", async () => {
    const c = copy('sha');
    const m = JSON.parse(readFileSync(c.manifest, 'utf8'));
    m.sha256 = '0'.repeat(64);
    writeFileSync(c.manifest, JSON.stringify(m));
    const r = await run(['verify', c.key, '--from', c.dir, '--identity', id.file]);
    expect(r.code).toBe(7);
    expect(r.stdout).toMatch(/✗ sha256: stored bytes hash to [0-9a-f]{64}, the manifest says 0{64}/);
  });

  it('a row count altered in the manifest: exit 7, naming the table', async () => {
    const c = copy('rows');
    const m = JSON.parse(readFileSync(c.manifest, 'utf8'));
    m.tables.find((t: { name: string }) => t.name === 'orders').rows = 2999;
    writeFileSync(c.manifest, JSON.stringify(m));
    const r = await run(['verify', c.key, '--from', c.dir, '--identity', id.file]);
    expect(r.code).toBe(7);
    expect(r.stdout).toContain('sales.orders: 3000 rows in the dump, the manifest says 2999');
  });

  it('a dump cut short but correctly compressed and encrypted: exit 7 by the completion marker', async () => {
    const c = copy('shortdump');
    const f = await run(['fetch', c.key, '--from', c.dir, '--identity', id.file]);
    const sqlText = Buffer.from(f.stdout);
    const cut = sqlText.subarray(0, Math.floor(sqlText.length * 0.6));
    writeFileSync(c.file, await ageEncrypt(gzipSync(cut), id.recipient));
    const r = await run(['verify', c.key, '--from', c.dir, '--identity', id.file]);
    expect(r.code).toBe(7);
    expect(r.stdout).toMatch(/✗ completion marker/);
    expect(r.stdout).toMatch(/✓ age/);
    expect(r.stdout).toMatch(/✓ gzip/);
  });

  it('a gzip stream cut short inside a good age file: exit 5 by the gzip check (damaged data, as restore and fetch say)', async () => {
    const c = copy('shortgzip');
    const f = await run(['fetch', c.key, '--from', c.dir, '--identity', id.file]);
    const gz = gzipSync(Buffer.from(f.stdout));
    writeFileSync(c.file, await ageEncrypt(gz.subarray(0, gz.length - 100), id.recipient));
    const r = await run(['verify', c.key, '--from', c.dir, '--identity', id.file]);
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/✗ gzip/);
  });

  it('the same damaged object gets the same exit code from restore, fetch and verify', async () => {
    const f = await run(['fetch', key, '--from', folder, '--identity', id.file]);
    expect(f.code, f.stderr).toBe(0);
    const gz = gzipSync(Buffer.from(f.stdout));
    const good = readFileSync(join(folder, key));
    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    const dir = tmp();
    const cases: Array<{ name: string; file: string; bytes: Buffer; exit: number }> = [
      { name: 'gzip cut inside a good age file', file: 'vf_same_20250101T000000Z.sql.gz.age', bytes: await ageEncrypt(gz.subarray(0, gz.length - 100), id.recipient), exit: 5 },
      { name: 'a .sql.gz cut short', file: 'vf_same_20250101T000001Z.sql.gz', bytes: gz.subarray(0, Math.floor(gz.length / 2)), exit: 5 },
      { name: 'a flipped byte in an age chunk', file: 'vf_same_20250101T000002Z.sql.gz.age', bytes: flipped, exit: 5 },
    ];
    let n = 0;
    for (const c of cases) {
      const path = join(dir, c.file);
      writeFileSync(path, c.bytes);
      const db = `vf_same_${n++}`;
      await createDb(db);
      const codes = {
        restore: (await run(['restore', path, '--to', url(db), '--yes', '--identity', id.file])).code,
        fetch: (await run(['fetch', path, '-o', join(dir, `${c.file}.out`), '--identity', id.file])).code,
        verify: (await run(['verify', path, '--identity', id.file])).code,
      };
      expect({ case: c.name, ...codes }).toEqual({ case: c.name, restore: c.exit, fetch: c.exit, verify: c.exit });
      expect(await sql(db, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`)).toEqual([{ n: 0 }]);
    }
  });

  it('--all walks every backup, reports each, and exits with the worst finding', async () => {
    const c = copy('all');
    // A second, good backup, and one incomplete (no manifest).
    const r0 = await run(['backup', '--database', url(SRC), '--to', c.dir, '--recipient', id.recipient]);
    expect(r0.code).toBe(0);
    const m = JSON.parse(readFileSync(c.manifest, 'utf8'));
    m.tables[0].rows += 1;
    writeFileSync(c.manifest, JSON.stringify(m));
    const r = await run(['verify', '--all', '--from', c.dir, '--identity', id.file]);
    expect(r.code).toBe(7);
    expect(r.stdout).toContain('2 backup(s) verified: 1 good, 1 bad');
    const flip = readFileSync(c.file);
    flip[flip.length - 50]! ^= 1;
    writeFileSync(c.file, flip);
    const r2 = await run(['verify', '--all', '--from', c.dir, '--identity', id.file, '--json']);
    expect(r2.code).toBe(5);
    expect(JSON.parse(r2.stdout).backups.map((b: { exitCode: number }) => b.exitCode).sort()).toEqual([0, 5]);
  });

  it('--restore-into restores into a scratch database, reports the time, and drops it', async () => {
    const r = await run(['verify', key, '--from', folder, '--identity', id.file, '--restore-into', url('postgres')]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/✓ restore: restored into a scratch database in .*; row counts match/);
    // Other files' verify --restore-into runs share this cluster: look for this run's scratch database only.
    const j = await run(['verify', key, '--from', folder, '--identity', id.file, '--restore-into', url('postgres'), '--json']);
    expect(j.code, j.stderr).toBe(0);
    const scratch = JSON.parse(j.stdout).backups[0].scratchDatabase as string;
    expect(scratch).toMatch(/^pgbackup_verify_/);
    expect(await sql('postgres', `SELECT datname FROM pg_database WHERE datname = '${scratch}'`)).toEqual([]);
  });

  it('--restore-into leaves no scratch database behind when the restore fails', async () => {
    const bin = fakeBinDir({ psql: `exec "$REAL/psql" -X -v ON_ERROR_STOP=1 -c "THIS FAILS"` });
    const r = await run(['verify', key, '--from', folder, '--identity', id.file, '--restore-into', url('postgres'), '--json'], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin }) });
    expect(r.code).toBe(6);
    const rep = JSON.parse(r.stdout).backups[0];
    expect(rep.checks.find((c: { check: string }) => c.check === 'restore')).toMatchObject({ ok: false, detail: expect.stringMatching(/^restore failed/) });
    expect(rep.scratchDatabase).toMatch(/^pgbackup_verify_/);
    expect(await sql('postgres', `SELECT datname FROM pg_database WHERE datname = '${rep.scratchDatabase}'`)).toEqual([]);
  });

  it('S3: a damaged object is caught', async () => {
    const b = await s3get('backups', `vf/${s3key}`);
    b[200]! ^= 1;
    const bad = s3key.replace('Z.sql', 'Z-7.sql');
    await s3put('backups', `vf/${bad}`, b);
    await s3put('backups', `vf/${bad}.json`, await s3get('backups', `vf/${s3key}.json`));
    const r = await run(['verify', bad, '--from', 's3://backups/vf/', '--identity', id.file]);
    expect(r.code).toBe(5);
  });
});
