// One storage contract, three backends (the model: restic's backend tests): the folder
// storage, s3rver and Ceph RGW, each through src/storage as the tool uses it. What a server
// does not do is written in GAPS below; the test checks the gap is still there (a gap that
// disappears fails the test too, so the table stays true), and nothing is skipped.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Readable } from 'node:stream';
import { randomBytes, createHash } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { S3Storage } from '../../src/storage/s3.js';
import { FolderStorage } from '../../src/storage/folder.js';
import type { Storage } from '../../src/storage/types.js';
import { s3client, rgwClient, tmp } from './helpers.js';

type Backend = 'folder' | 's3rver' | 'rgw';
type Feature =
  | 'if-none-match on PutObject'
  | 'if-none-match on CompleteMultipartUpload'
  | 'tags on PutObject'
  | 'tags on CreateMultipartUpload'
  | 'PutObjectTagging'
  | 'metadata'
  | 'ListMultipartUploads'
  | 'suffix Range';

/** Known gaps of each backend, with the reason; every other feature must hold. */
const GAPS: Record<Backend, Partial<Record<Feature, string>>> = {
  folder: {
    'tags on PutObject': 'a folder keeps no tags (no lifecycle on folders)',
    'tags on CreateMultipartUpload': 'a folder keeps no tags',
    PutObjectTagging: 'a folder keeps no tags',
    metadata: 'a folder keeps no user metadata (the manifest holds it)',
    ListMultipartUploads: 'a folder has no multipart uploads (a killed write leaves a hidden .partial file, removed by the next backup)',
  },
  s3rver: {
    'if-none-match on PutObject': 's3rver ignores If-None-Match',
    'if-none-match on CompleteMultipartUpload': 's3rver ignores If-None-Match',
    'tags on PutObject': 's3rver ignores x-amz-tagging',
    'tags on CreateMultipartUpload': 's3rver ignores x-amz-tagging',
    'suffix Range': 's3rver answers Range: bytes=-N with the wrong bytes',
    ListMultipartUploads: 's3rver does not implement ListMultipartUploads',
  },
  rgw: {
    'if-none-match on CompleteMultipartUpload': 'RGW 16 ignores If-None-Match on CompleteMultipartUpload',
    'tags on CreateMultipartUpload': 'RGW 16 loses x-amz-tagging sent with CreateMultipartUpload (Ceph tracker 53016)',
  },
};

/** `ok`: the feature behaved as S3 specifies. A listed gap must still show; anything else must hold. */
function holds(b: Backend, f: Feature, ok: boolean): void {
  const gap = GAPS[b][f];
  if (gap) expect(ok, `${b}: the known gap "${f}" (${gap}) no longer shows: remove it from GAPS (and from the docs)`).toBe(false);
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
      holds(b, 'suffix Range', tail.equals(big.subarray(big.length - 100)) && whole.toString() === 'hello');
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
        holds(b, 'ListMultipartUploads', false);
      } else {
        const s3 = storage as S3Storage;
        const uploads = await s3.listUploads('abort/', signal()).then(
          (u) => u,
          () => null,
        );
        holds(b, 'ListMultipartUploads', uploads !== null);
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
      holds(b, 'if-none-match on PutObject', second !== null && kept);

      await storage.putStream('cond/small.sql', Readable.from([Buffer.from('first')]), { signal: signal(), partSize: PART });
      const small = await storage.putStream('cond/small.sql', Readable.from([Buffer.from('second')]), { signal: signal(), partSize: PART }).then(
        () => null,
        (e: Error) => e,
      );
      holds(b, 'if-none-match on PutObject', small !== null && (await storage.getBytes('cond/small.sql', signal()))!.toString() === 'first');

      const first = big.subarray(0, 6 * MIB);
      await storage.putStream('cond/big.sql', Readable.from([first]), { signal: signal(), partSize: PART });
      const other = Buffer.from(first);
      other[0] = other[0]! ^ 1;
      const multi = await storage.putStream('cond/big.sql', Readable.from([other]), { signal: signal(), partSize: PART }).then(
        () => null,
        (e: Error) => e,
      );
      const bigKept = sha((await storage.getBytes('cond/big.sql', signal()))!) === sha(first);
      holds(b, 'if-none-match on CompleteMultipartUpload', multi !== null && bigKept);
    });

    it('tags: set at creation (single and multipart) and afterwards', async () => {
      await storage.putStream('tags/small.sql.gz', Readable.from([Buffer.from('x')]), { signal: signal(), tags: { tier: 'weekly' }, partSize: PART });
      await storage.putStream('tags/big.sql.gz', Readable.from([big.subarray(0, 6 * MIB)]), { signal: signal(), tags: { tier: 'monthly' }, partSize: PART });
      if (!storage.getTags || !storage.putTags) {
        // The folder: no tags at all (the interface has no tag methods for it).
        expect(storage.kind).toBe('folder');
        holds(b, 'tags on PutObject', false);
        holds(b, 'tags on CreateMultipartUpload', false);
        holds(b, 'PutObjectTagging', false);
        return;
      }
      holds(b, 'tags on PutObject', (await storage.getTags('tags/small.sql.gz', signal()))?.tier === 'weekly');
      holds(b, 'tags on CreateMultipartUpload', (await storage.getTags('tags/big.sql.gz', signal()))?.tier === 'monthly');
      await storage.putTags('tags/big.sql.gz', { tier: 'yearly' }, signal());
      holds(b, 'PutObjectTagging', JSON.stringify(await storage.getTags('tags/big.sql.gz', signal())) === JSON.stringify({ tier: 'yearly' }));
      expect(await storage.getTags('tags/missing', signal())).toBeNull();
    });
  });
}
