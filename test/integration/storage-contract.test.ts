// One storage contract, three backends (the model: restic's backend tests): the folder
// storage, s3rver and Ceph RGW, each through src/storage as the tool uses it. What a server
// does not do is written in GAPS below; the test checks the gap is still there (a gap that
// disappears fails the test too, so the table stays true), and nothing is skipped.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Readable } from 'node:stream';
import { randomBytes, createHash } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { S3Storage } from '../../src/storage/s3.js';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
  AbortMultipartUploadCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { FolderStorage } from '../../src/storage/folder.js';
import type { Storage } from '../../src/storage/types.js';
import { s3client, rgwClient, tmp } from './helpers.js';

type Backend = 'folder' | 's3rver' | 'rgw';
type Feature =
  | 'no overwrite by putBytes(ifAbsent)'
  | 'no overwrite by a single-part putStream'
  | 'no overwrite by a multipart putStream'
  | 'concurrent writers never share a key'
  | 'tags of a single-part put'
  | 'tags of a multipart put'
  | 'putTags'
  | 'metadata'
  | 'listUploads'
  | 'suffix reads';

/**
 * What the storage layer cannot give on each backend, with the reason. Where the server lacks
 * something the tool makes up for (RGW's lost multipart tags: set again; its unconditional
 * CompleteMultipartUpload: the key is claimed first), the gap is not here but in SERVER_GAPS.
 */
const GAPS: Record<Backend, Partial<Record<Feature, string>>> = {
  folder: {
    'tags of a single-part put': 'a folder keeps no tags (no lifecycle on folders)',
    'tags of a multipart put': 'a folder keeps no tags',
    putTags: 'a folder keeps no tags',
    metadata: 'a folder keeps no user metadata (the manifest holds it)',
    listUploads: 'a folder has no multipart uploads (a killed write leaves a hidden .partial file, removed by the next backup)',
  },
  s3rver: {
    'no overwrite by putBytes(ifAbsent)': 's3rver ignores If-None-Match',
    'no overwrite by a single-part putStream': 's3rver ignores If-None-Match on PutObject',
    // A multipart write one after another sees the existing object (HEAD after its claim); at the
    // same moment, two writers both get the key (the claim's If-None-Match is ignored too).
    'concurrent writers never share a key': 's3rver ignores If-None-Match (the claim object too): no atomic claim possible',
    'suffix reads': 's3rver answers Range: bytes=-N with the wrong bytes',
    listUploads: 's3rver does not implement ListMultipartUploads',
  },
  rgw: {},
};

type ServerFeature =
  | 'If-None-Match on PutObject'
  | 'If-None-Match on CompleteMultipartUpload'
  | 'x-amz-tagging on PutObject'
  | 'x-amz-tagging on CreateMultipartUpload'
  | 'ListMultipartUploads';

/** The S3 servers' own gaps, seen through the plain SDK (what the tool works around). */
const SERVER_GAPS: Record<'s3rver' | 'rgw', Partial<Record<ServerFeature, string>>> = {
  s3rver: {
    'If-None-Match on PutObject': 'ignored',
    'If-None-Match on CompleteMultipartUpload': 'ignored',
    'x-amz-tagging on PutObject': 'ignored (PutObjectTagging works)',
    'x-amz-tagging on CreateMultipartUpload': 'ignored (PutObjectTagging works)',
    ListMultipartUploads: 'not implemented',
  },
  rgw: {
    'If-None-Match on CompleteMultipartUpload': 'RGW 16 ignores it: a second upload replaces the first (the tool claims the key with a conditional PutObject first)',
    'x-amz-tagging on CreateMultipartUpload': 'RGW 16 loses the tags (Ceph tracker 53016; the tool sets them again with PutObjectTagging)',
  },
};

/** `ok`: the feature behaved as S3 specifies. A listed gap must still show; anything else must hold. */
function holds(b: Backend, f: Feature, ok: boolean): void {
  const gap = GAPS[b][f];
  if (gap) expect(ok, `${b}: the known gap "${f}" (${gap}) no longer shows: remove it from GAPS (and from the docs)`).toBe(false);
  else expect(ok, `${b}: ${f} does not hold`).toBe(true);
}

function serverHolds(b: 's3rver' | 'rgw', f: ServerFeature, ok: boolean): void {
  const gap = SERVER_GAPS[b][f];
  if (gap) expect(ok, `${b}: the known server gap "${f}" (${gap}) no longer shows: remove it from SERVER_GAPS (and from the README's quirks table)`).toBe(false);
  else expect(ok, `${b}: ${f} does not hold`).toBe(true);
}

const MIB = 1024 * 1024;
const PART = 5 * MIB;
const signal = () => new AbortController().signal;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function bytesOf(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A body that sends `good` then fails, like a pg_dump that dies mid-stream. */
function failingBody(good: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(good);
      } else setTimeout(() => this.destroy(new Error('the dump died')), 50);
    },
  });
}

let run = 0;
function open(b: Backend): { storage: Storage; cleanup: () => void } {
  const prefix = `contract-${process.pid}-${++run}/`;
  if (b === 'folder') {
    const dir = tmp('pgbackup-contract-');
    return { storage: new FolderStorage(dir), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }
  const client = b === 's3rver' ? s3client() : rgwClient();
  return { storage: new S3Storage({ bucket: 'backups', prefix, listPageSize: 3 }, client), cleanup: () => client.destroy() };
}

// Shared across backends: 11 MiB of random bytes (three parts of 5 MiB), made once.
const big = randomBytes(11 * MIB);

for (const b of ['folder', 's3rver', 'rgw'] as const) {
  describe(`storage contract: ${b}`, () => {
    let storage: Storage;
    let cleanup: () => void;
    beforeAll(() => {
      ({ storage, cleanup } = open(b));
    });
    afterAll(() => cleanup());

    it('stores a small object and a multipart one whole, with their size and metadata', async () => {
      const small = await storage.putStream('db/small.sql.gz', Readable.from([Buffer.from('hello')]), { signal: signal(), metadata: { database: 'db' }, partSize: PART });
      expect(small).toEqual({ size: 5, key: 'db/small.sql.gz' });
      expect((await storage.getBytes('db/small.sql.gz', signal()))!.toString()).toBe('hello');
      const multi = await storage.putStream('db/big.sql.gz', Readable.from([big]), { signal: signal(), metadata: { database: 'db', 'server-version': '17.1' }, partSize: PART, queueSize: 2 });
      expect(multi).toEqual({ size: big.length, key: 'db/big.sql.gz' });
      expect(sha((await storage.getBytes('db/big.sql.gz', signal()))!)).toBe(sha(big));
      const h = await storage.head('db/big.sql.gz', signal());
      expect(h?.size).toBe(big.length);
      expect(await storage.head('db/missing', signal())).toBeNull();
      expect(await storage.getBytes('db/missing', signal())).toBeNull();
      holds(b, 'metadata', h?.metadata?.['server-version'] === '17.1' && (await storage.head('db/small.sql.gz', signal()))?.metadata?.database === 'db');
    });

    it('reads byte ranges across part boundaries and suffixes', async () => {
      const range = await bytesOf(await storage.get('db/big.sql.gz', { signal: signal(), start: PART - 10, end: PART + 9 }));
      expect(range.equals(big.subarray(PART - 10, PART + 10))).toBe(true);
      const open = await bytesOf(await storage.get('db/big.sql.gz', { signal: signal(), start: 2 * PART + 1 }));
      expect(open.equals(big.subarray(2 * PART + 1))).toBe(true);
      const tail = await bytesOf(await storage.get('db/big.sql.gz', { signal: signal(), suffix: 100 }));
      // A suffix longer than the object is the whole object.
      const whole = await bytesOf(await storage.get('db/small.sql.gz', { signal: signal(), suffix: 100 }));
      holds(b, 'suffix reads', tail.equals(big.subarray(big.length - 100)) && whole.toString() === 'hello');
    });

    it('lists every key under a prefix, page after page, and nothing beside it', async () => {
      const names = ['a', 'b b', 'c', 'dé', 'e/f', 'e/g', 'h'];
      for (const n of names) await storage.putBytes(`list/x/${n}`, Buffer.from(n), { signal: signal() });
      await storage.putBytes('list/xy', Buffer.from('beside'), { signal: signal() });
      const seen: string[] = [];
      for await (const o of storage.list('list/x/', signal())) {
        seen.push(o.key);
        expect(o.size).toBe(Buffer.byteLength(o.key.slice('list/x/'.length)));
      }
      expect(seen.sort()).toEqual(names.map((n) => `list/x/${n}`).sort());
    });

    it('a failed write leaves nothing: no object, no multipart upload, no partial file', async () => {
      await expect(storage.putStream('abort/body.sql.gz', failingBody(big.subarray(0, 6 * MIB)), { signal: signal(), partSize: PART, queueSize: 1 })).rejects.toThrow(/the dump died/);
      const ac = new AbortController();
      const p = storage.putStream('abort/signal.sql.gz', failingBody(big.subarray(0, 6 * MIB)), { signal: ac.signal, partSize: PART, queueSize: 1 });
      setTimeout(() => ac.abort(new Error('stopped by signal')), 20);
      await expect(p).rejects.toThrow();
      expect(await storage.head('abort/body.sql.gz', signal())).toBeNull();
      expect(await storage.head('abort/signal.sql.gz', signal())).toBeNull();
      if (storage instanceof FolderStorage) {
        expect(readdirSync(`${storage.root}/abort`)).toEqual([]);
        holds(b, 'listUploads', false);
      } else {
        const s3 = storage as S3Storage;
        const uploads = await s3.listUploads('abort/', signal()).then(
          (u) => u,
          () => null,
        );
        holds(b, 'listUploads', uploads !== null);
        if (uploads !== null) expect(uploads).toEqual([]);
      }
    });

    it('conditional writes: an existing object is never replaced', async () => {
      await storage.putBytes('cond/m.json', Buffer.from('first'), { signal: signal(), ifAbsent: true });
      const second = await storage.putBytes('cond/m.json', Buffer.from('second'), { signal: signal(), ifAbsent: true }).then(
        () => null,
        (e: Error) => e,
      );
      const kept = (await storage.getBytes('cond/m.json', signal()))!.toString() === 'first';
      holds(b, 'no overwrite by putBytes(ifAbsent)', second !== null && kept);
      if (second) expect(second.message).toMatch(/already exists/);

      await storage.putStream('cond/small.sql', Readable.from([Buffer.from('first')]), { signal: signal(), partSize: PART });
      const small = await storage.putStream('cond/small.sql', Readable.from([Buffer.from('second')]), { signal: signal(), partSize: PART }).then(
        () => null,
        (e: Error) => e,
      );
      holds(b, 'no overwrite by a single-part putStream', small !== null && (await storage.getBytes('cond/small.sql', signal()))!.toString() === 'first');

      const first = big.subarray(0, 6 * MIB);
      await storage.putStream('cond/big.sql', Readable.from([first]), { signal: signal(), partSize: PART });
      const other = Buffer.from(first);
      other[0] = other[0]! ^ 1;
      const multi = await storage.putStream('cond/big.sql', Readable.from([other]), { signal: signal(), partSize: PART }).then(
        () => null,
        (e: Error) => e,
      );
      const bigKept = sha((await storage.getBytes('cond/big.sql', signal()))!) === sha(first);
      holds(b, 'no overwrite by a multipart putStream', multi !== null && bigKept);

      // With nextKey, a folder moves the write on to the next key; S3 refuses (KEY_TAKEN) and the first object stays.
      const moved = storage.putStream('cond/big.sql', Readable.from([other]), { signal: signal(), partSize: PART, nextKey: () => 'cond/big-2.sql' });
      if (b === 'folder') expect((await moved).key).toBe('cond/big-2.sql');
      else await expect(moved).rejects.toMatchObject({ code: 'KEY_TAKEN' });
      if (b !== 's3rver') expect(sha((await storage.getBytes('cond/big.sql', signal()))!)).toBe(sha(first));
    });

    it('concurrent writers of one key: none replaced; each stores under its own key or stops saying so', async () => {
      const gap = GAPS[b]['concurrent writers never share a key'];
      if (gap) {
        // Not run: without conditional writes it cannot hold. The server gap behind it must still show.
        expect(SERVER_GAPS[b as 's3rver']['If-None-Match on PutObject'], `${b}: ${gap}`).toBeDefined();
        return;
      }
      for (let round = 0; round < 3; round++) {
        const bodies = [0, 1].map((i) => {
          const x = Buffer.from(big.subarray(0, 6 * MIB));
          x[0] = i;
          x[1] = round;
          return x;
        });
        const next = (k: string) => (k.endsWith('-2.sql') ? k.replace(/-2\.sql$/, '-3.sql') : k.replace(/\.sql$/, '-2.sql'));
        const results = await Promise.allSettled(bodies.map((x) => storage.putStream(`race/r${round}.sql`, Readable.from([x]), { signal: signal(), partSize: PART, nextKey: next })));
        const stored = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ key: string }>).value.key);
        const what = `round ${round}: ${JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : r.value.key)))}`;
        expect(new Set(stored).size, what).toBe(stored.length);
        // The loser (S3: no next key) says so clearly.
        for (const r of results) if (r.status === 'rejected') expect(String(r.reason), what).toMatch(/another backup stored .* at the same moment.*the other backup is intact/);
        // Every writer that was told "stored" finds its own bytes under its key.
        for (const [i, r] of results.entries()) {
          if (r.status !== 'fulfilled') continue;
          expect(sha((await storage.getBytes(r.value.key, signal()))!)).toBe(sha(bodies[i]!));
        }
        expect(stored.length).toBeGreaterThanOrEqual(1);
      }
    });

    it('tags: kept from creation (single and multipart, set again when the server drops them) and afterwards', async () => {
      const warnings: string[] = [];
      const warn = (m: string) => warnings.push(m);
      await storage.putStream('tags/small.sql.gz', Readable.from([Buffer.from('x')]), { signal: signal(), tags: { tier: 'weekly' }, partSize: PART, warn });
      await storage.putStream('tags/big.sql.gz', Readable.from([big.subarray(0, 6 * MIB)]), { signal: signal(), tags: { tier: 'monthly' }, partSize: PART, warn });
      if (!storage.getTags || !storage.putTags) {
        // The folder: no tags at all (the interface has no tag methods for it).
        expect(storage.kind).toBe('folder');
        holds(b, 'tags of a single-part put', false);
        holds(b, 'tags of a multipart put', false);
        holds(b, 'putTags', false);
        return;
      }
      holds(b, 'tags of a single-part put', (await storage.getTags('tags/small.sql.gz', signal()))?.tier === 'weekly');
      holds(b, 'tags of a multipart put', (await storage.getTags('tags/big.sql.gz', signal()))?.tier === 'monthly');
      // Where the server dropped them, a warning says so (RGW: the multipart one; s3rver: both).
      const dropped = { rgw: ['tags/big.sql.gz'], s3rver: ['tags/small.sql.gz', 'tags/big.sql.gz'] }[b as 'rgw' | 's3rver'];
      expect(warnings.length, warnings.join('\n')).toBe(dropped.length);
      for (const k of dropped) expect(warnings.join('\n')).toContain(`${k} (tier=`);
      await storage.putTags('tags/big.sql.gz', { tier: 'yearly' }, signal());
      holds(b, 'putTags', JSON.stringify(await storage.getTags('tags/big.sql.gz', signal())) === JSON.stringify({ tier: 'yearly' }));
      expect(await storage.getTags('tags/missing', signal())).toBeNull();
    });
  });
}

/** Raw S3 requests through the SDK: what each server does itself. */
for (const b of ['s3rver', 'rgw'] as const) {
  describe(`server quirks: ${b}`, () => {
    let client: S3Client;
    const Bucket = 'backups';
    const p = `quirks-${process.pid}/`;
    beforeAll(() => {
      client = b === 's3rver' ? s3client() : rgwClient();
    });
    afterAll(() => client.destroy());

    const multipart = async (Key: string, body: Buffer, extra: { Tagging?: string; IfNoneMatch?: string } = {}) => {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key, Tagging: extra.Tagging }));
      const parts = [];
      for (let i = 0; i * PART < body.length; i++) {
        const r = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1, Body: body.subarray(i * PART, (i + 1) * PART) }));
        parts.push({ PartNumber: i + 1, ETag: r.ETag });
      }
      try {
        await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts }, IfNoneMatch: extra.IfNoneMatch }));
      } catch (e) {
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
        throw e;
      }
    };
    const tags = async (Key: string) => Object.fromEntries(((await client.send(new GetObjectTaggingCommand({ Bucket, Key }))).TagSet ?? []).map((t) => [t.Key, t.Value]));
    const body = async (Key: string) => Buffer.from(await (await client.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToByteArray());

    it('conditional writes, tags at creation and multipart listing, as the table says', async () => {
      await client.send(new PutObjectCommand({ Bucket, Key: `${p}put`, Body: 'first', Tagging: 'tier=daily' }));
      const put2 = await client.send(new PutObjectCommand({ Bucket, Key: `${p}put`, Body: 'second', IfNoneMatch: '*' })).then(() => true, () => false);
      serverHolds(b, 'If-None-Match on PutObject', !put2 && (await body(`${p}put`)).toString() === 'first');
      serverHolds(b, 'x-amz-tagging on PutObject', (await tags(`${p}put`)).tier === 'daily');

      const one = big.subarray(0, 6 * MIB);
      await multipart(`${p}mp`, one, { Tagging: 'tier=weekly' });
      serverHolds(b, 'x-amz-tagging on CreateMultipartUpload', (await tags(`${p}mp`)).tier === 'weekly');
      const two = Buffer.from(one);
      two[0] = two[0]! ^ 1;
      const mp2 = await multipart(`${p}mp`, two, { IfNoneMatch: '*' }).then(() => true, () => false);
      serverHolds(b, 'If-None-Match on CompleteMultipartUpload', !mp2 && sha(await body(`${p}mp`)) === sha(one));

      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: `${p}open` }));
      const listed = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: p })).then((r) => (r.Uploads ?? []).map((u) => u.UploadId), () => null);
      serverHolds(b, 'ListMultipartUploads', listed !== null && listed.includes(UploadId));
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key: `${p}open`, UploadId })).catch(() => undefined);
    });
  });
}
