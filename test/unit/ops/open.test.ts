// The read path's first steps without a server: ranged reads (in order, whole parts, a short
// part caught) and the magic-byte check (a name that disagrees with the first bytes is damaged
// data, exit 5; ASCII armor is refused, exit 2).
import { describe, it, expect } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { openBackup, rangedStream } from '../../../src/ops/open.js';
import { FolderStorage } from '../../../src/storage/folder.js';
import type { Storage } from '../../../src/storage/index.js';
import { CryptoError, StorageError, UsageError } from '../../../src/support/errors.js';
import type { Context } from '../../../src/support/context.js';
import { tempDir } from '../../support/tmp.js';

/** An S3-like storage over a buffer: answers ranged gets, records them, may cut one short. */
function fakeS3(data: Buffer, o: { shortAt?: number } = {}) {
  const ranges: Array<[number, number]> = [];
  const storage = {
    kind: 's3',
    async get(_key: string, opts: { start?: number; end?: number }) {
      const start = opts.start ?? 0;
      const end = opts.end ?? data.length - 1;
      ranges.push([start, end]);
      // Answer in small pieces, late for early parts, so that order is the reader's doing.
      await new Promise((r) => setTimeout(r, start === 0 ? 20 : 0));
      const body = data.subarray(start, o.shortAt === start ? end : end + 1);
      const pieces: Buffer[] = [];
      for (let i = 0; i < body.length; i += 1000) pieces.push(body.subarray(i, i + 1000));
      return Readable.from(pieces);
    },
  } as unknown as Storage;
  return { storage, ranges };
}

async function all(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('rangedStream', () => {
  const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));

  it('reads an object in ranged parts, several in flight, and yields them in order', async () => {
    const { storage, ranges } = fakeS3(data);
    const out = await all(rangedStream(storage, 'k', data.length, new AbortController().signal, 3000, 3));
    expect(out.equals(data)).toBe(true);
    expect(ranges.sort((a, b) => a[0] - b[0])).toEqual([[0, 2999], [3000, 5999], [6000, 8999], [9000, 9999]]);
  });

  it('a part shorter than asked for fails the read (a StorageError), never passes as data', async () => {
    const { storage } = fakeS3(data, { shortAt: 3000 });
    const e = await all(rangedStream(storage, 'k', data.length, new AbortController().signal, 3000, 2)).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(StorageError);
    expect((e as StorageError).message).toMatch(/short read of k at bytes 3000-5999/);
  });

  it('an object within one part is one plain read', async () => {
    const { storage, ranges } = fakeS3(data);
    expect((await all(rangedStream(storage, 'k', data.length, new AbortController().signal, 20_000))).equals(data)).toBe(true);
    expect(ranges).toEqual([[0, 9999]]);
  });
});

describe('openBackup: the magic bytes must agree with the name', () => {
  const ctx = { signal: new AbortController().signal, env: {}, log: { info() {}, warn() {}, debug() {} }, out() {}, isTTY: false } as unknown as Context;
  const dir = tempDir('pgbackup-magic-');
  const storage = new FolderStorage(dir);
  const open = (key: string, body: Buffer) => {
    writeFileSync(join(dir, key), body);
    return openBackup(ctx, { storage, key, display: key, size: body.length }, { identities: [], passphrases: [] }).then(() => null, (e: unknown) => e);
  };
  const sql = Buffer.from('--\n-- PostgreSQL database dump\n--\n'.repeat(4));

  it('a .sql.gz.age that holds gzip, a .sql.gz that holds SQL, a .sql that holds gzip: damaged or misnamed, exit 5', async () => {
    for (const [key, body, says] of [
      ['a.sql.gz.age', gzipSync(sql), /name says age-encrypted but its first bytes are gzip/],
      ['b.sql.gz', sql, /name says gzip but its first bytes are not age or gzip/],
      ['c.sql', gzipSync(sql), /name says plain SQL but its first bytes are gzip/],
      ['d.sql.gz', Buffer.from('age-encryption.org/v1\n-> X25519 abc\n'.repeat(3)), /name says gzip but its first bytes are age/],
    ] as const) {
      const e = await open(key, body);
      expect(e, key).toBeInstanceOf(CryptoError);
      expect((e as CryptoError).code).toBe('MAGIC_MISMATCH');
      expect((e as CryptoError).message).toMatch(says);
    }
  });

  it('ASCII-armored age is refused with a usage error', async () => {
    const e = await open('e.sql.gz.age', Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOQ==\n-----END AGE ENCRYPTED FILE-----\n'));
    expect(e).toBeInstanceOf(UsageError);
  });

  it('names that agree with their bytes open (the decode chain follows the suffix)', async () => {
    expect(await open('f.sql', sql)).toBeNull();
    expect(await open('g.sql.gz', gzipSync(sql))).toBeNull();
  });
});
