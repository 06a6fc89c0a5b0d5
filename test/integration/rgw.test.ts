// The tool against a real S3 implementation: Ceph RGW 16 (test/support/rgw.mjs), whose
// quirks are in the README's table: tags of multipart uploads lost, If-None-Match ignored on
// CompleteMultipartUpload, lifecycle filters answered in another form, settings `bucket check`
// cannot verify there. The databases are "multipart-sized": their dumps are over one 5 MiB part.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn } from 'node:child_process';
import { GetObjectTaggingCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error plain JS test support
import { startFaultyProxy } from '../support/faulty-proxy.mjs';
import { BIN, RGW, run, url, tmp, createDb, snapshot, newIdentity, sql, rgwClient, rgwEnv, rgwAdmin, rgwBucket, fakeBinDir } from './helpers.js';

const SRC = 'rgw_src';
let id: { file: string; recipient: string };
let client: S3Client;

/** Over one 5 MiB part (PGBACKUP_S3_PART_SIZE in rgwEnv below) once compressed: 6 MiB of random bytes (hex in the dump). */
async function multipartSized(db: string): Promise<void> {
  await createDb(db, 'rich.sql');
  await sql(db, `CREATE TABLE blobs (i int PRIMARY KEY, b bytea)`);
  await sql(db, `INSERT INTO blobs SELECT g, (SELECT decode(string_agg(md5(random()::text || g || x), ''), 'hex') FROM generate_series(1, 6144) x) FROM generate_series(1, 64) g`);
}

const keysOf = async (Bucket: string, Prefix: string) => ((await client.send(new ListObjectsV2Command({ Bucket, Prefix }))).Contents ?? []).map((o) => o.Key!).sort();
const tierOf = async (Bucket: string, Key: string) => (await client.send(new GetObjectTaggingCommand({ Bucket, Key }))).TagSet?.find((t) => t.Key === 'tier')?.Value;

beforeAll(async () => {
  id = await newIdentity(tmp());
  client = rgwClient();
  await multipartSized(SRC);
});

describe('against Ceph RGW', () => {
  it('backup (tags that stick), list, verify, restore and fetch', async () => {
    const env = rgwEnv({ PGBACKUP_S3_PART_SIZE: '5MiB' });
    const b = await run(['backup', '--database', url(SRC), '--to', 's3://backups/rgw/', '--recipient', id.recipient], { env });
    expect(b.code, b.stderr).toBe(0);
    const key = b.stdout.trim();
    // RGW lost the tier tag sent with CreateMultipartUpload: the tool saw it and set it again.
    expect(b.stderr).toMatch(/dropped the tags sent with s3:\/\/backups\/rgw\/.*\(tier=/);
    expect(await tierOf('backups', key)).toMatch(/^(daily|weekly|monthly|yearly)$/);
    expect(await tierOf('backups', `${key}.json`)).toBe(await tierOf('backups', key));
    expect(await tierOf('backups', `${key}.claim`)).toBe(await tierOf('backups', key));

    const l = await run(['list', '--from', 's3://backups/rgw/', '--json'], { env });
    expect(l.code, l.stderr).toBe(0);
    const listed = (JSON.parse(l.stdout) as { backups: Array<{ key: string; status: string }> }).backups;
    expect(listed.map((x) => [x.key, x.status])).toEqual([[key.slice('rgw/'.length), 'complete']]);

    const v = await run(['verify', '--all', '--from', 's3://backups/rgw/', '--identity', id.file], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);

    const r = await run(['restore', '--latest', '--database', SRC, '--from', 's3://backups/rgw/', '--to', url('rgw_dest'), '--create', '--identity', id.file], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(await snapshot('rgw_dest')).toEqual(await snapshot(SRC));

    const f = await run(['fetch', key.slice('rgw/'.length), '--from', 's3://backups/rgw/', '--identity', id.file], { env });
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toContain('CREATE TABLE public.blobs');
  }, 300_000);

  it('two backups of one database started together, several times: none replaces another; every complete one verifies and restores', async () => {
    const env = rgwEnv({ PGBACKUP_S3_PART_SIZE: '5MiB' });
    const stored: string[] = [];
    for (let round = 0; round < 3; round++) {
      const both = await Promise.all([0, 1].map(() => run(['backup', '--database', url(SRC), '--to', 's3://backups/race/', '--recipient', id.recipient], { env })));
      for (const r of both) {
        if (r.code === 0) stored.push(r.stdout.trim());
        else {
          // The loser says what happened (never "cannot write manifest: 412") and stored nothing.
          expect(r.code, r.stderr).toBe(4);
          expect(r.stderr).toMatch(/another backup stored s3:\/\/backups\/race\/.* at the same moment.*the other backup is intact/);
          // (\b412\b: a key's timestamp such as T214127Z holds the digits 412.)
          expect(r.stderr).not.toMatch(/\b412\b|PreconditionFailed|\n\s+at /);
        }
      }
    }
    expect(stored.length).toBeGreaterThanOrEqual(3);
    expect(new Set(stored).size).toBe(stored.length);
    const v = await run(['verify', '--all', '--from', 's3://backups/race/', '--identity', id.file, '--json'], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const want = await snapshot(SRC);
    for (const [i, key] of stored.entries()) {
      const r = await run(['restore', key.slice('race/'.length), '--from', 's3://backups/race/', '--to', url(`rgw_race_${i}`), '--create', '--identity', id.file], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(await snapshot(`rgw_race_${i}`)).toEqual(want);
    }
    // Every dump in the prefix is complete (the loser left no dump behind).
    const l = (JSON.parse((await run(['list', '--from', 's3://backups/race/', '--json'], { env })).stdout) as { backups: Array<{ key: string; status: string }> }).backups;
    expect(l.every((x) => x.status === 'complete')).toBe(true);
    expect(l.map((x) => x.key).sort()).toEqual(stored.map((k) => k.slice('race/'.length)).sort());
  }, 900_000);

  it('a CreateMultipartUpload carried out by the server whose answer never came (timed out, retried): the backup completes and aborts the stray upload', async () => {
    let creates = 0;
    const proxy = (await startFaultyProxy(RGW().endpoint, (req: { method?: string; url?: string }) =>
      req.method === 'POST' && /[?&]uploads\b/.test(req.url ?? '') && creates++ === 0 ? 'lost' : undefined,
    )) as { endpoint: string; log: Array<{ action: string | number }>; stop: () => Promise<void> };
    try {
      const env = rgwEnv({ PGBACKUP_S3_PART_SIZE: '5MiB', AWS_ENDPOINT_URL_S3: proxy.endpoint, PGBACKUP_S3_TIMEOUT: '1s' });
      const b = await run(['backup', '--database', url(SRC), '--to', 's3://backups/rgw-late/', '--recipient', id.recipient], { env });
      expect(b.code, b.stderr).toBe(0);
      expect(proxy.log.filter((l) => l.action === 'lost')).toHaveLength(1);
      // The first CreateMultipartUpload made an upload on RGW that the tool never heard of; swept.
      expect(b.stderr).toMatch(/aborted 1 of 1 stray multipart upload\(s\) of s3:\/\/backups\/rgw-late\//);
      const left = (await client.send(new ListMultipartUploadsCommand({ Bucket: 'backups', Prefix: 'rgw-late/' }))).Uploads ?? [];
      expect(left.map((u) => u.Key)).toEqual([]);
      const v = await run(['verify', '--all', '--from', 's3://backups/rgw-late/', '--identity', id.file], { env: rgwEnv() });
      expect(v.code, v.stdout + v.stderr).toBe(0);
    } finally {
      await proxy.stop();
    }
  }, 300_000);

  it('bucket lifecycle --apply, then bucket check: the lifecycle rules are ok; what RGW cannot show is listed apart', async () => {
    const bucket = await rgwBucket('lc-check');
    const env = rgwEnv({ PGBACKUP_S3_PART_SIZE: '5MiB' });
    const a = await run(['bucket', 'lifecycle', '--apply', '--to', `s3://${bucket}/prod/`], { env });
    expect(a.code, a.stderr).toBe(0);
    const c = await run(['bucket', 'check', '--to', `s3://${bucket}/prod/`, '--json'], { env });
    const j = JSON.parse(c.stdout) as { server: string; findings: Array<{ check: string; status: string; detail: string }>; notVerified: string[] };
    expect(j.findings.find((f) => f.check === 'lifecycle rules')).toMatchObject({ status: 'ok' });
    expect(j.server).toBe('Ceph RGW');
    expect(j.notVerified.sort()).toEqual(['TLS-only policy', 'default encryption', 'public access block']);
    expect(j.findings.find((f) => f.check === 'public access block')!.detail).toMatch(/403 \(Ceph tracker 49135\)/);
    // Versioning is off on a new bucket: that is missing, and verified.
    expect(c.code).toBe(7);
    const t = await run(['bucket', 'check', '--to', `s3://${bucket}/prod/`], { env });
    expect(t.stdout).toMatch(/ok\s+lifecycle rules[\s\S]*not verified on this server \(Ceph RGW\):\n[\s\S]*public access block/);
    expect(t.stdout.split('not verified on this server')[0]).not.toMatch(/public access block|TLS-only|default encryption/);
  }, 300_000);

  it('retention: the tool\'s own rules expire a daily backup (dump, manifest, claim) and a killed backup\'s upload; a yearly one stays', async () => {
    const bucket = await rgwBucket('retention');
    const to = `s3://${bucket}/ret/`;
    const env = rgwEnv({ PGBACKUP_KEEP_DAILY_DAYS: '1', PGBACKUP_S3_PART_SIZE: '5MiB' });
    expect((await run(['bucket', 'lifecycle', '--apply', '--to', to], { env })).code).toBe(0);
    const daily = await run(['backup', '--database', url(SRC), '--to', to, '--recipient', id.recipient, '--tier', 'daily'], { env });
    expect(daily.code, daily.stderr).toBe(0);
    const yearly = await run(['backup', '--database', url(SRC), '--to', to, '--recipient', id.recipient, '--tier', 'yearly'], { env });
    expect(yearly.code, yearly.stderr).toBe(0);
    const [dk, yk] = [daily.stdout.trim(), yearly.stdout.trim()];
    // (The daily one may be gone already: a day lasts seconds. Its expiry below shows its tag.)
    expect(await tierOf(bucket, yk)).toBe('yearly');

    // A backup killed mid-upload: pg_dump's output stalls after 6 MB (uncompressed: a part is
    // uploaded), then SIGKILL once the upload is listed.
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | { head -c 6000000; sleep 60; }` });
    const killed = spawn(process.execPath, [BIN, 'backup', '--database', url(SRC), '--to', to, '--recipient', id.recipient, '--tier', 'daily', '--compress-level', '0'], {
      env: { ...env, PGBACKUP_PG_BINDIR: bin },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => killed.once('exit', r));
    const uploads = async () => (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'ret/' }))).Uploads ?? [];
    for (let i = 0; (await uploads()).length === 0; i++) {
      expect(i, 'the stalled backup never began its multipart upload').toBeLessThan(600);
      await new Promise((r) => setTimeout(r, 100));
    }
    killed.kill('SIGKILL');
    await exited;
    expect(await uploads()).toHaveLength(1);

    // A lifecycle day lasts RGW().lcDayS seconds; `lc process` runs a pass now.
    const gone = async () => {
      const keys = await keysOf(bucket, 'ret/');
      return !keys.some((k) => k.startsWith(dk)) && (await uploads()).length === 0;
    };
    const deadline = Date.now() + 40 * RGW().lcDayS * 1000;
    while (!(await gone())) {
      expect(Date.now(), `not expired: ${JSON.stringify(await keysOf(bucket, 'ret/'))}, uploads ${(await uploads()).length}`).toBeLessThan(deadline);
      rgwAdmin(['lc', 'process']);
      await new Promise((r) => setTimeout(r, 1000));
    }
    // The yearly backup is whole, and still verifies.
    expect(await keysOf(bucket, 'ret/')).toEqual([yk, `${yk}.claim`, `${yk}.json`].sort());
    const v = await run(['verify', '--all', '--from', to, '--identity', id.file], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
  }, 400_000);
});

