// Several targets in one run: one dump, the same bytes in every target, each with its manifest.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, url, tmp, createDb, snapshot, s3keys, s3get, newIdentity, baseEnv, S3, filesUnder, dropDb, sql } from './helpers.js';
// @ts-expect-error plain JS test support
import { startFaultyProxy } from '../support/faulty-proxy.mjs';

const DB = 'mt_src';
let id: { file: string; recipient: string };
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

beforeAll(async () => {
  id = await newIdentity(tmp());
  await createDb(DB, 'rich.sql');
  // About 12 MB of text: several 5 MiB parts even after gzip level 1.
  await sql(DB, `CREATE TABLE blob AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) AS v FROM generate_series(1, 90000) g`);
});

const isPart = (r: { method?: string; url?: string }) => r.method === 'PUT' && /partNumber=/.test(r.url ?? '');

describe('backup --to A --to B', () => {
  it('folder + S3: the same bytes in both, each with its manifest, and either restores', async () => {
    const dir = tmp();
    const r = await run(['backup', '--database', url(DB), '--to', dir, '--to', 's3://backups/mt-both/', '--recipient', id.recipient]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(2);
    const key = lines[0]!;
    expect(lines[1]).toBe(`mt-both/${key}`);
    const local = readFileSync(join(dir, key));
    const remote = await s3get('backups', `mt-both/${key}`);
    expect(remote.equals(local)).toBe(true);
    const mLocal = JSON.parse(readFileSync(join(dir, `${key}.json`), 'utf8'));
    const mRemote = JSON.parse((await s3get('backups', `mt-both/${key}.json`)).toString());
    expect(mLocal.key).toBe(key);
    expect(mRemote.key).toBe(`mt-both/${key}`);
    expect(mRemote.sha256).toBe(mLocal.sha256);
    for (const from of [dir, 's3://backups/mt-both/']) {
      await dropDb('mt_back');
      const rr = await run(['restore', key, '--from', from, '--to', url('mt_back'), '--create', '--identity', id.file]);
      expect(rr.code, rr.stderr).toBe(0);
      expect(await snapshot('mt_back')).toEqual(await snapshot(DB));
    }
  });

  it('PGBACKUP_TARGET lists several targets (whitespace-separated); a relative entry in a list is refused', async () => {
    const a = tmp();
    const b = tmp();
    const r = await run(['backup', '--database', url(DB), '--recipient', id.recipient, '--compress-level', '1'], { env: baseEnv({ PGBACKUP_TARGET: `${a}\n ${b}` }) });
    expect(r.code, r.stderr).toBe(0);
    expect(filesUnder(a)).toEqual(filesUnder(b));
    expect(filesUnder(a).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    const bad = await run(['backup', '--database', url(DB), '--recipient', id.recipient], { env: baseEnv({ PGBACKUP_TARGET: `${a} backups` }) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/PGBACKUP_TARGET: entry #2 "backups".*absolute/);
    const twice = await run(['backup', '--database', url(DB), '--recipient', id.recipient, '--to', a, '--to', `${a}/`]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/named twice/);
  });

  it('the second target failing midway: exit 4 naming it, a complete backup in the first (verify, restore), nothing in the second', async () => {
    let otherParts = 0;
    const p = await startFaultyProxy(S3().endpoint, (req: http.IncomingMessage) => {
      if (!isPart(req) || !/^\/other\//.test(req.url ?? '')) return undefined;
      // The first part goes through; from the second on, the bucket fails every attempt.
      return ++otherParts >= 2 ? { status: 500, code: 'InternalError' } : undefined;
    });
    stops.push(() => p.stop());
    const env = baseEnv({ AWS_ENDPOINT_URL_S3: p.endpoint, AWS_MAX_ATTEMPTS: '2' });
    const r = await run(
      ['backup', '--database', url(DB), '--to', 's3://backups/mt-fail/', '--to', 's3://other/mt-fail/', '--recipient', id.recipient, '--part-size', '5MiB', '--compress-level', '1'],
      { env },
    );
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/failed in 1 of 2 targets: s3:\/\/other\/mt-fail\//);
    expect(r.stderr).toMatch(/complete in s3:\/\/backups\/mt-fail\//);
    expect(otherParts).toBeGreaterThanOrEqual(2);
    // The first target: the dump and its manifest (and the multipart upload's claim), and the stored key printed.
    const all = await s3keys('backups', 'mt-fail/');
    expect(all.filter((k) => k.endsWith('.claim'))).toHaveLength(1);
    const keys = all.filter((k) => !k.endsWith('.claim'));
    expect(keys.filter((k) => k.endsWith('.json'))).toHaveLength(1);
    expect(keys).toHaveLength(2);
    expect(r.stdout.trim()).toBe(keys.find((k) => !k.endsWith('.json')));
    // The second: nothing (the multipart upload aborted, no object, no manifest).
    expect(await s3keys('other', 'mt-fail/')).toEqual([]);
    const key = r.stdout.trim().slice('mt-fail/'.length);
    const v = await run(['verify', key, '--from', 's3://backups/mt-fail/', '--identity', id.file]);
    expect(v.code, v.stderr).toBe(0);
    await dropDb('mt_back');
    const rr = await run(['restore', key, '--from', 's3://backups/mt-fail/', '--to', url('mt_back'), '--create', '--identity', id.file]);
    expect(rr.code, rr.stderr).toBe(0);
    expect(await snapshot('mt_back')).toEqual(await snapshot(DB));
  });

  it('a folder target that cannot be written: exit 4 naming it, the S3 copy complete', async () => {
    const dir = tmp();
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/mt-folderfail/', '--to', file, '--recipient', id.recipient, '--compress-level', '1']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain(`failed in 1 of 2 targets: ${file}`);
    const keys = await s3keys('backups', 'mt-folderfail/');
    expect(keys).toHaveLength(2);
    const v = await run(['verify', '--latest', '--database', DB, '--from', 's3://backups/mt-folderfail/', '--identity', id.file]);
    expect(v.code, v.stderr).toBe(0);
  });
});
