// S3Storage against a stubbed HTTP handler: what we send (tags, conditions, metadata) and
// what we do when the service fails. The integration tests run the real thing against s3rver.
import { describe, it, expect } from 'vitest';
import { Readable, PassThrough } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
type HttpRequest = { method: string; path: string; query?: Record<string, string>; headers: Record<string, string>; body?: unknown };
import { S3Storage } from '../../../src/storage/s3.js';
import { StorageError, DumpError } from '../../../src/support/errors.js';

type Answer = { status: number; headers?: Record<string, string>; body?: string };

function stub(answer: (req: HttpRequest) => Answer) {
  const seen: HttpRequest[] = [];
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: 'http://s3.test',
    forcePathStyle: true,
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      async handle(req: HttpRequest) {
        if (req.body && typeof (req.body as Readable).pipe === 'function') {
          for await (const _ of req.body as Readable) void _;
        }
        seen.push(req);
        const a = answer(req);
        return { response: { statusCode: a.status, headers: a.headers ?? {}, body: Readable.from([Buffer.from(a.body ?? '')]) } };
      },
    } as never,
  });
  return { client, seen };
}

const ok = (req: HttpRequest): Answer => {
  const q = req.query ?? {};
  if (req.method === 'POST' && 'uploads' in q) return { status: 200, body: '<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>U1</UploadId></InitiateMultipartUploadResult>' };
  if (req.method === 'PUT' && q.partNumber) return { status: 200, headers: { etag: `"e${q.partNumber}"` } };
  if (req.method === 'POST' && q.uploadId) return { status: 200, body: '<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"x"</ETag></CompleteMultipartUploadResult>' };
  if (req.method === 'PUT') return { status: 200, headers: { etag: '"p"' } };
  if (req.method === 'DELETE') return { status: 204 };
  return { status: 404 };
};

const MIB = 1024 * 1024;

/** `ok` with memory: objects exist once completed (HEAD answers their ETag), and keep their tags. */
function okStore() {
  const stored = new Map<string, { etag: string; tagging: string }>();
  const creates = new Map<string, string>();
  return (req: HttpRequest): Answer => {
    const q = req.query ?? {};
    if (req.method === 'POST' && 'uploads' in q) creates.set(req.path, req.headers['x-amz-tagging'] ?? '');
    if (req.method === 'POST' && q.uploadId) stored.set(req.path, { etag: '"x"', tagging: creates.get(req.path) ?? '' });
    if (req.method === 'PUT' && !q.partNumber && !('tagging' in q)) stored.set(req.path, { etag: '"p"', tagging: req.headers['x-amz-tagging'] ?? '' });
    const o = stored.get(req.path);
    if (req.method === 'PUT' && 'tagging' in q && o) {
      const xml = typeof req.body === 'string' ? req.body : Buffer.isBuffer(req.body) ? req.body.toString() : '';
      o.tagging = [...xml.matchAll(/<Key>([^<]*)<\/Key><Value>([^<]*)<\/Value>/g)].map((m) => `${m[1]}=${m[2]}`).join('&');
      return { status: 200 };
    }
    if (req.method === 'HEAD') return o ? { status: 200, headers: { etag: o.etag, 'content-length': '0' } } : { status: 404 };
    if (req.method === 'GET' && 'tagging' in q) {
      const tags = new URLSearchParams(o?.tagging ?? '');
      return { status: 200, body: `<Tagging><TagSet>${[...tags].map(([k, v]) => `<Tag><Key>${k}</Key><Value>${v}</Value></Tag>`).join('')}</TagSet></Tagging>` };
    }
    return ok(req);
  };
}

describe('S3Storage', () => {
  it('creates objects conditionally (claiming the key before completing), with the tier tag, metadata and encryption at creation', async () => {
    const { client, seen } = stub(okStore());
    const s = new S3Storage({ bucket: 'b', prefix: 'p/', sse: 'aws:kms', kmsKeyId: 'k1' }, client);
    const r = await s.putStream('db/x.sql.gz.age', Readable.from([Buffer.alloc(12 * MIB, 1)]), {
      signal: new AbortController().signal,
      tags: { tier: 'weekly' },
      metadata: { database: 'db' },
      partSize: 5 * MIB,
      queueSize: 2,
    });
    expect(r).toEqual({ size: 12 * MIB, key: 'db/x.sql.gz.age' });
    const create = seen.find((q) => q.method === 'POST' && 'uploads' in (q.query ?? {}))!;
    expect(create.path).toBe('/b/p/db/x.sql.gz.age');
    // The key is claimed right before the upload completes: a conditional PutObject of its .claim object, tagged like the dump.
    const claim = seen.findIndex((q) => q.method === 'PUT' && q.path === '/b/p/db/x.sql.gz.age.claim');
    expect(claim).toBeGreaterThan(seen.indexOf(create));
    expect(claim).toBeLessThan(seen.findIndex((q) => q.method === 'POST' && (q.query ?? {}).uploadId));
    expect(seen[claim]!.headers['if-none-match']).toBe('*');
    expect(seen[claim]!.headers['x-amz-tagging']).toBe('tier=weekly');
    expect(create.headers['x-amz-tagging']).toBe('tier=weekly');
    expect(create.headers['x-amz-meta-database']).toBe('db');
    expect(create.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    const complete = seen.find((q) => q.method === 'POST' && (q.query ?? {}).uploadId)!;
    expect(complete.headers['if-none-match']).toBe('*');
    expect(seen.filter((q) => q.method === 'PUT' && (q.query ?? {}).partNumber)).toHaveLength(3);
    // The tags were read back (they stuck: nothing set again).
    expect(seen.some((q) => q.method === 'GET' && 'tagging' in (q.query ?? {}))).toBe(true);
    expect(seen.some((q) => q.method === 'PUT' && 'tagging' in (q.query ?? {}))).toBe(false);
    // Small manifests too.
    await s.putBytes('db/x.json', Buffer.from('{}'), { signal: new AbortController().signal, ifAbsent: true, tags: { tier: 'weekly' } });
    const put = seen.filter((q) => q.method === 'PUT' && q.path === '/b/p/db/x.json')[0]!;
    expect(put.headers['if-none-match']).toBe('*');
    expect(put.headers['x-amz-tagging']).toBe('tier=weekly');
  });

  it('a body that fails aborts the multipart upload and reports the body\'s error, not the abort\'s', async () => {
    const store = okStore();
    const { client, seen } = stub((req) => (req.method === 'DELETE' ? { status: 405, body: '<Error><Code>MethodNotAllowed</Code></Error>' } : store(req)));
    const s = new S3Storage({ bucket: 'b', prefix: '' }, client);
    const body = new PassThrough();
    const warnings: string[] = [];
    const p = s.putStream('k', body, { signal: new AbortController().signal, partSize: 5 * MIB, warn: (m) => warnings.push(m) });
    body.write(Buffer.alloc(6 * MIB));
    await new Promise((r) => setTimeout(r, 50));
    body.destroy(new DumpError('DUMP_FAILED', 'pg_dump exited with code 1'));
    await expect(p).rejects.toMatchObject({ exitCode: 3, message: 'pg_dump exited with code 1' });
    expect(seen.some((q) => q.method === 'DELETE' && (q.query ?? {}).uploadId === 'U1')).toBe(true);
    expect(seen.some((q) => q.method === 'POST' && (q.query ?? {}).uploadId)).toBe(false); // never completed
    expect(warnings.join()).toContain('could not abort multipart upload U1');
  });

  it('tags dropped by the server are set again with PutObjectTagging, with a warning', async () => {
    const store = okStore();
    // A server that loses the tags of CreateMultipartUpload (Ceph RGW 16).
    const { client, seen } = stub((req) => (req.method === 'POST' && 'uploads' in (req.query ?? {}) ? store({ ...req, headers: { ...req.headers, 'x-amz-tagging': '' } }) : store(req)));
    const s = new S3Storage({ bucket: 'b', prefix: '' }, client);
    const warnings: string[] = [];
    await s.putStream('k', Readable.from([Buffer.alloc(6 * MIB, 1)]), { signal: new AbortController().signal, partSize: 5 * MIB, tags: { tier: 'daily' }, warn: (m) => warnings.push(m) });
    expect(seen.filter((q) => q.method === 'PUT' && 'tagging' in (q.query ?? {}))).toHaveLength(1);
    expect(warnings.join()).toContain('dropped the tags');
  });

  it('a multipart upload whose claim is refused (another writer claimed the key) stops: no Complete, upload aborted, clear message', async () => {
    const store = okStore();
    const { client, seen } = stub((req) => (req.method === 'PUT' && req.path.endsWith('.claim') ? { status: 412, body: '<Error><Code>PreconditionFailed</Code></Error>' } : store(req)));
    const s = new S3Storage({ bucket: 'b', prefix: '' }, client);
    const e = await s.putStream('k', Readable.from([Buffer.alloc(6 * MIB, 1)]), { signal: new AbortController().signal, partSize: 5 * MIB }).catch((x) => x);
    expect(e).toBeInstanceOf(StorageError);
    expect(e.code).toBe('KEY_TAKEN');
    expect(e.message).toMatch(/another backup stored s3:\/\/b\/k at the same moment \(its claim k\.claim came first\).*the other backup is intact/);
    expect(seen.some((q) => q.method === 'POST' && (q.query ?? {}).uploadId)).toBe(false);
    expect(seen.some((q) => q.method === 'DELETE' && (q.query ?? {}).uploadId === 'U1')).toBe(true);
    // The other writer's claim is not touched.
    expect(seen.some((q) => q.method === 'DELETE' && q.path === '/b/k.claim')).toBe(false);
  });

  it('a key taken by another writer (412) is reported as such', async () => {
    const { client } = stub((req) => (req.method === 'PUT' ? { status: 412, body: '<Error><Code>PreconditionFailed</Code></Error>' } : ok(req)));
    const s = new S3Storage({ bucket: 'b', prefix: '' }, client);
    const e = await s.putStream('k', Readable.from([Buffer.from('small')]), { signal: new AbortController().signal }).catch((x) => x);
    expect(e).toBeInstanceOf(StorageError);
    expect(e.code).toBe('KEY_TAKEN');
  });

  it('head without s3:GetObject (the backup job\'s policy: 403 on dumps) answers from the listing', async () => {
    const listing = '<ListBucketResult><Name>b</Name><Contents><Key>p/db/x.sql.gz.age</Key><Size>1234</Size><ETag>"abc-2"</ETag><LastModified>2026-11-29T10:00:00.000Z</LastModified></Contents></ListBucketResult>';
    const { client, seen } = stub((req) => (req.method === 'HEAD' ? { status: 403 } : req.method === 'GET' ? { status: 200, body: listing } : { status: 404 }));
    const s = new S3Storage({ bucket: 'b', prefix: 'p/' }, client);
    const h = await s.head('db/x.sql.gz.age', new AbortController().signal);
    expect(h).toMatchObject({ key: 'db/x.sql.gz.age', size: 1234, etag: 'abc-2' });
    expect(seen.map((r) => r.method)).toEqual(['HEAD', 'GET']);
    // A listing whose first key is another object: not there.
    expect(await s.head('db/x.sql', new AbortController().signal)).toBeNull();
  });

  it('head still fails loudly when the listing is refused too', async () => {
    const { client } = stub(() => ({ status: 403 }));
    const s = new S3Storage({ bucket: 'b', prefix: 'p/' }, client);
    const e = await s.head('db/x', new AbortController().signal).catch((x) => x);
    expect(e).toBeInstanceOf(StorageError);
  });
});
