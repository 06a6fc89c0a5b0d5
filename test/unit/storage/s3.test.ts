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

describe('S3Storage', () => {
  it('creates objects conditionally, with the tier tag, metadata and encryption at creation', async () => {
    const { client, seen } = stub(ok);
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
    expect(create.headers['x-amz-tagging']).toBe('tier=weekly');
    expect(create.headers['x-amz-meta-database']).toBe('db');
    expect(create.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    const complete = seen.find((q) => q.method === 'POST' && (q.query ?? {}).uploadId)!;
    expect(complete.headers['if-none-match']).toBe('*');
    expect(seen.filter((q) => q.method === 'PUT' && (q.query ?? {}).partNumber)).toHaveLength(3);
    // Small manifests too.
    await s.putBytes('db/x.json', Buffer.from('{}'), { signal: new AbortController().signal, ifAbsent: true, tags: { tier: 'weekly' } });
    const put = seen[seen.length - 1]!;
    expect(put.headers['if-none-match']).toBe('*');
    expect(put.headers['x-amz-tagging']).toBe('tier=weekly');
  });

  it('a body that fails aborts the multipart upload and reports the body\'s error, not the abort\'s', async () => {
    const { client, seen } = stub((req) => (req.method === 'DELETE' ? { status: 405, body: '<Error><Code>MethodNotAllowed</Code></Error>' } : ok(req)));
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

  it('a key taken by another writer (412) is reported as such', async () => {
    const { client } = stub((req) => (req.method === 'PUT' ? { status: 412, body: '<Error><Code>PreconditionFailed</Code></Error>' } : ok(req)));
    const s = new S3Storage({ bucket: 'b', prefix: '' }, client);
    const e = await s.putStream('k', Readable.from([Buffer.from('small')]), { signal: new AbortController().signal }).catch((x) => x);
    expect(e).toBeInstanceOf(StorageError);
    expect(e.code).toBe('KEY_TAKEN');
  });
});
