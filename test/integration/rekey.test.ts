// Key rotation: the age header rewritten for new recipients, the payload copied as it is.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CopyObjectCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { run, url, tmp, createDb, snapshot, newIdentity, needCommand, dropDb, sql, baseEnv, rgwEnv, rgwBucket, rgwClient, s3client, s3put } from './helpers.js';

const DB = 'rk_src';
let oldId: { file: string; recipient: string };
let newId: { file: string; recipient: string };
let newId2: { file: string; recipient: string };

beforeAll(async () => {
  needCommand('age');
  const d = tmp();
  oldId = await newIdentity(d);
  newId = await newIdentity(tmp());
  newId2 = await newIdentity(tmp());
  await createDb(DB, 'rich.sql');
  // About 12 MB of hex text: about 5.6 MB stored after gzip level 1, past S3's 5 MiB part
  // (asserted where it matters), so S3 takes the UploadPartCopy path (76,000 rows stored 4.5 MB).
  await sql(DB, `CREATE TABLE blob AS SELECT g AS id, md5(g::text) || md5((g+1)::text) || md5(random()::text) || md5(random()::text) AS v FROM generate_series(1, ${BLOB_ROWS}) g`);
});

const BLOB_ROWS = 95_000;
/** S3's smallest multipart part: a stored object past this (plus the new header) is re-keyed with UploadPartCopy. */
const MIN_PART = 5 * 1024 * 1024;

/** The reference age CLI: does this identity decrypt these bytes (to a gzip stream)? */
function ageOpens(bytes: Buffer, identity: string): boolean {
  try {
    const out = execFileSync('age', ['-d', '-i', identity], { input: bytes, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
    return out.length > 0 && out[0] === 0x1f && out[1] === 0x8b;
  } catch {
    return false;
  }
}

interface Place {
  from: string;
  env: NodeJS.ProcessEnv;
  object: (key: string) => Promise<Buffer>;
  keys: () => Promise<string[]>;
  /** Copy everything stored here (backups and manifests, byte for byte) into `to`, of the same kind. */
  copyTo: (to: Place) => Promise<void>;
}

function folderPlace(dir: string): Place {
  const walk = (d: string, p = ''): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name), `${p}${e.name}/`) : [`${p}${e.name}`]));
  return {
    from: dir,
    env: baseEnv(),
    object: (k) => Promise.resolve(readFileSync(join(dir, k))),
    keys: () => Promise.resolve(walk(dir).sort()),
    copyTo: (to) => Promise.resolve(cpSync(dir, to.from, { recursive: true })),
  };
}

function s3Place(client: () => S3Client, bucket: string, prefix: string, env: NodeJS.ProcessEnv): Place {
  const place: Place = {
    from: `s3://${bucket}/${prefix}`,
    env,
    async object(k) {
      const c = client();
      try {
        const r = await c.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + k }));
        return Buffer.from(await r.Body!.transformToByteArray());
      } finally {
        c.destroy();
      }
    },
    async keys() {
      const c = client();
      try {
        const r = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
        return (r.Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
      } finally {
        c.destroy();
      }
    },
    async copyTo(to) {
      // Server-side copies within the same S3 server (metadata and tags copied as they are).
      const [, toBucket, toPrefix] = /^s3:\/\/([^/]+)\/(.*)$/.exec(to.from)!;
      const c = client();
      try {
        for (const k of await place.keys()) {
          await c.send(new CopyObjectCommand({ Bucket: toBucket, Key: toPrefix + k, CopySource: `${bucket}/${prefix}${k}` }));
        }
      } finally {
        c.destroy();
      }
    },
  };
  return place;
}

async function backupTo(p: Place): Promise<string> {
  const r = await run(['backup', '--database', url(DB), '--to', p.from, '--recipient', oldId.recipient, '--compress-level', '1'], { env: p.env });
  expect(r.code, r.stderr).toBe(0);
  const full = r.stdout.trim();
  return p.from.startsWith('s3://') ? full.slice(p.from.replace(/^s3:\/\/[^/]+\//, '').length) : full;
}

const rekey = (p: Place, key: string, extra: NodeJS.ProcessEnv = {}, recipients = [newId.recipient]) =>
  run(['rekey', key, '--from', p.from, '--identity', oldId.file, ...recipients.flatMap((r) => ['--recipient', r])], { env: { ...p.env, ...extra } });

async function expectRekeyed(p: Place, key: string, recipients = [newId.recipient]) {
  const bytes = await p.object(key);
  expect(ageOpens(bytes, newId.file)).toBe(true);
  expect(ageOpens(bytes, oldId.file)).toBe(false);
  const m = JSON.parse((await p.object(`${key}.json`)).toString());
  expect(m.encryption.recipients.sort()).toEqual([...recipients].sort());
  expect(m.rekey).toBeUndefined();
  expect(m.sizes.stored).toBe(bytes.length);
  expect(m.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  expect((await p.keys()).filter((k) => k.endsWith('.rekey'))).toEqual([]);
  const v = await run(['verify', key, '--from', p.from, '--identity', newId.file], { env: p.env });
  expect(v.code, v.stdout + v.stderr).toBe(0);
  const vOld = await run(['verify', key, '--from', p.from, '--identity', oldId.file], { env: p.env });
  expect(vOld.code).toBe(5);
}

const STEPS = ['staged', 'pending', 'replaced', 'final'] as const;

/**
 * A fresh place holding one backup of DB made with the old key. The backup is made once per
 * kind of place and copied byte for byte into each test's own place (the rekey works on what is
 * stored, so every test still starts from an untouched backup, without a pg_dump of its own).
 */
function withBackup(place: () => Promise<Place>): () => Promise<{ p: Place; key: string }> {
  let template: Promise<{ p: Place; key: string }> | undefined;
  return async () => {
    template ??= place().then(async (p) => ({ p, key: await backupTo(p) }));
    const t = await template;
    const p = await place();
    await t.p.copyTo(p);
    return { p, key: t.key };
  };
}

function suite(name: string, backedUp: () => Promise<{ p: Place; key: string }>, multipart: boolean) {
  describe(`rekey on ${name}`, () => {
    it('rewrites the header for the new recipients: age -d with the new key works, the old key fails; the payload bytes are the same; it restores', async () => {
      const { p, key } = await backedUp();
      const before = await p.object(key);
      // Past one part: the server-side copy (UploadPartCopy) does the payload's rest.
      if (multipart) expect(before.length).toBeGreaterThan(MIN_PART + 4096);
      const r = await rekey(p, key, {}, [newId.recipient, newId2.recipient]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^rekeyed /);
      const after = await p.object(key);
      // Everything after the header is byte for byte the old payload.
      const end = (b: Buffer) => b.indexOf('\n', b.indexOf('\n---') + 1) + 1;
      expect(after.subarray(end(after)).equals(before.subarray(end(before)))).toBe(true);
      expect(ageOpens(after, newId2.file)).toBe(true);
      await expectRekeyed(p, key, [newId.recipient, newId2.recipient]);
      await dropDb('rk_back');
      const rr = await run(['restore', key, '--from', p.from, '--to', url('rk_back'), '--create', '--identity', newId.file], { env: p.env });
      expect(rr.code, rr.stderr).toBe(0);
      expect(await snapshot('rk_back')).toEqual(await snapshot(DB));
      // Again with the same recipients: nothing to do.
      const again = await run(['rekey', key, '--from', p.from, '--identity', newId.file, '--recipient', newId.recipient, '--recipient', newId2.recipient], { env: p.env });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/^unchanged /);
    });

    for (const step of STEPS) {
      it(`killed after "${step}": the backup stays readable (old or new key), and a re-run finishes`, async () => {
        const { p, key } = await backedUp();
        const r = await rekey(p, key, { PGBACKUP_TEST_REKEY_KILL_AFTER: step });
        expect(r.signal).toBe('SIGKILL');
        const bytes = await p.object(key);
        const readable = ageOpens(bytes, oldId.file) || ageOpens(bytes, newId.file);
        expect(readable).toBe(true);
        // Old before the object was replaced, new after.
        expect(ageOpens(bytes, step === 'staged' || step === 'pending' ? oldId.file : newId.file)).toBe(true);
        // pgbackup itself reads it with whichever key opens it: the manifest accepts the object.
        const v = await run(['verify', key, '--from', p.from, '--identity', oldId.file, '--identity', newId.file], { env: p.env });
        expect(v.code, v.stdout + v.stderr).toBe(0);
        const again = await rekey(p, key);
        expect(again.code, again.stderr).toBe(0);
        await expectRekeyed(p, key);
      });
    }

    it('--all --database: every backup of the database; a wrong old identity: exit 5, the backups untouched', async () => {
      const { p, key: k1 } = await backedUp();
      const k2 = await backupTo(p);
      expect(k2).not.toBe(k1);
      const before = await p.object(k1);
      const wrong = await run(['rekey', '--all', '--database', DB, '--from', p.from, '--identity', newId2.file, '--recipient', newId.recipient], { env: p.env });
      expect(wrong.code).toBe(5);
      expect(wrong.stderr).toMatch(/no identity matches/);
      expect((await p.object(k1)).equals(before)).toBe(true);
      const r = await run(['rekey', '--all', '--database', DB, '--from', p.from, '--identity', oldId.file, '--recipient', newId.recipient], { env: p.env });
      expect(r.code, r.stderr).toBe(0);
      for (const k of [k1, k2]) await expectRekeyed(p, k);
    });
  });
}

let n = 0;
const folderBackup = withBackup(() => Promise.resolve(folderPlace(tmp())));
suite('a folder', folderBackup, false);
// s3rver (the suite's S3 server) has no UploadPartCopy (NotImplemented): the server-side copy
// is exercised on Ceph RGW, a real S3 implementation.
suite(
  'S3 (Ceph RGW: server-side UploadPartCopy)',
  withBackup(async () => {
    const bucket = await rgwBucket('rekey');
    return s3Place(rgwClient, bucket, `rk${++n}/`, rgwEnv());
  }),
  true,
);

describe('rekey on s3rver', () => {
  it('a backup under 5 MiB: one PutObject of the new header and the payload; a larger one fails clearly (no UploadPartCopy), the backup unchanged', async () => {
    await createDb('rk_small', 'rich.sql');
    const p = s3Place(s3client, 'backups', `rk-small-${++n}/`, baseEnv());
    const b = await run(['backup', '--database', url('rk_small'), '--to', p.from, '--recipient', oldId.recipient], { env: p.env });
    expect(b.code, b.stderr).toBe(0);
    const key = b.stdout.trim().slice(p.from.slice('s3://backups/'.length).length);
    const r = await rekey(p, key);
    expect(r.code, r.stderr).toBe(0);
    await expectRekeyed(p, key);
    // The large backup: a folder's copied into s3rver as it is (same object layout).
    const big = s3Place(s3client, 'backups', `rk-big-${++n}/`, baseEnv());
    const { p: folder, key: bigKey } = await folderBackup();
    for (const k of await folder.keys()) await s3put('backups', `rk-big-${n}/${k}`, await folder.object(k));
    const before = await big.object(bigKey);
    expect(before.length).toBeGreaterThan(MIN_PART + 4096);
    const f = await rekey(big, bigKey);
    expect(f.code).toBe(4);
    expect(f.stderr).toMatch(/NotImplemented|not implemented/i);
    expect((await big.object(bigKey)).equals(before)).toBe(true);
  });
});
