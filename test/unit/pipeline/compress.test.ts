import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, gzipSync, createGunzip } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { ParallelGzip, ParallelGunzip } from '../../../src/pipeline/compress.js';
import { isZlibError } from '../../../src/support/errors.js';

async function compress(input: Buffer, blockSize: number, writes = 7): Promise<Buffer> {
  const gz = new ParallelGzip({ level: 6, blockSize, concurrency: 3 });
  const parts: Buffer[] = [];
  gz.on('data', (c: Buffer) => parts.push(c));
  const step = Math.max(1, Math.ceil(input.length / writes));
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += step) chunks.push(input.subarray(i, i + step));
  await pipeline(Readable.from(chunks), gz);
  return Buffer.concat(parts);
}

function text(n: number): Buffer {
  const words = ['COPY', 'public.users', '\\N', 'tab\there', 'ü', '42', 'INSERT'];
  const out: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = words[(i * 31) % words.length]! + (i % 13 === 0 ? '\n' : ' ');
    out.push(w);
    len += Buffer.byteLength(w);
  }
  return Buffer.from(out.join('')).subarray(0, n);
}

const found = new Map<string, boolean>();
/** Whether `c` is on PATH (looked up once per tool, not once per case). */
function hasCmd(c: string): boolean {
  let ok = found.get(c);
  if (ok === undefined) {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' });
      ok = true;
    } catch {
      ok = false;
    }
    found.set(c, ok);
  }
  return ok;
}

describe('parallel gzip', () => {
  const B = 64 * 1024;
  for (const [name, size] of [['empty', 0], ['tiny', 1], ['block-sized', B], ['block + 1', B + 1], ['odd', 5 * B + 12345]] as const) {
    it(`${name} (${size} bytes): zlib's gunzip restores the input byte for byte`, async () => {
      const input = Buffer.concat([text(Math.floor(size / 2)), randomBytes(size - Math.floor(size / 2))]);
      const out = await compress(input, B);
      expect(gunzipSync(out).equals(input)).toBe(true);
      // And as a stream (multi-member).
      const g = createGunzip();
      const parts: Buffer[] = [];
      g.on('data', (c: Buffer) => parts.push(c));
      await pipeline(Readable.from([out]), g);
      expect(Buffer.concat(parts).equals(input)).toBe(true);
      // The standard tools, always (a missing one fails the test: .ci/run installs pigz).
      for (const tool of ['gunzip', 'pigz']) if (!hasCmd(tool)) throw new Error(`this test needs "${tool}": install it (.ci/run does)`);
      expect(execFileSync('gunzip', ['-c'], { input: out }).equals(input)).toBe(true);
      expect(execFileSync('pigz', ['-dc'], { input: out }).equals(input)).toBe(true);
    });
  }

  it('keeps the order of blocks whatever order they finish in, and compresses like gzip', async () => {
    const input = Buffer.concat(Array.from({ length: 40 }, (_, i) => (i % 3 ? text(B - 7) : randomBytes(B + 3))));
    const out = await compress(input, B, 97);
    expect(gunzipSync(out).equals(input)).toBe(true);
  });
});

/** The members of a gzip file written by ParallelGzip, cut by the length each header carries. */
function membersOf(gz: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < gz.length; ) {
    // 1f 8b, deflate, FEXTRA only; XLEN 8; subfield 'P' 'B' of 4 bytes: the member's length.
    expect([...gz.subarray(at, at + 4)]).toEqual([0x1f, 0x8b, 8, 4]);
    expect(gz.readUInt16LE(at + 10)).toBe(8);
    expect(gz.subarray(at + 12, at + 14).toString('latin1')).toBe('PB');
    expect(gz.readUInt16LE(at + 14)).toBe(4);
    const n = gz.readUInt32LE(at + 16);
    out.push(gz.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Through ParallelGunzip in chunks of `step` bytes (slow consumer when `slow`). */
async function inflate(gz: Buffer, step: number, concurrency = 3, slow = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < gz.length; i += step) chunks.push(gz.subarray(i, i + step));
  const g = new ParallelGunzip({ concurrency });
  const parts: Buffer[] = [];
  const sink = new (await import('node:stream')).Writable({
    highWaterMark: 1,
    write: (c: Buffer, _e, cb) => {
      parts.push(c);
      if (slow) setImmediate(cb);
      else cb();
    },
  });
  await pipeline(Readable.from(chunks), g, sink);
  return Buffer.concat(parts);
}

async function inflateError(gz: Buffer, step = 4096): Promise<unknown> {
  return inflate(gz, step).then(
    () => expect.fail('inflated without an error'),
    (e: unknown) => e,
  );
}

describe('parallel gunzip', () => {
  const B = 64 * 1024;

  it('every member ParallelGzip writes carries its own length, and the members together are the file', async () => {
    const input = Buffer.concat([text(3 * B), randomBytes(B), text(B / 2)]);
    const gz = await compress(input, B);
    const members = membersOf(gz);
    expect(members).toHaveLength(5);
    expect(Buffer.concat(members.map((m) => gunzipSync(m))).equals(input)).toBe(true);
  });

  for (const step of [1, 7, 4096, 1 << 20]) {
    it(`reads what ParallelGzip writes, fed ${step}-byte chunks, in order, with a slow consumer too`, async () => {
      // Fewer blocks for the tiny chunks (a callback per byte), enough to have several in flight.
      const input = Buffer.concat(Array.from({ length: step < 100 ? 6 : 23 }, (_, i) => (i % 4 ? text(B - 11 * i) : randomBytes(B + 5))));
      const gz = await compress(input, B, 31);
      expect((await inflate(gz, step)).equals(input)).toBe(true);
      expect((await inflate(gz, step, 1, true)).equals(input)).toBe(true);
    });
  }

  it('reads gzip without length fields as zlib does: one member, several, pigz output, and ours followed by others', async () => {
    const input = text(5 * B + 3);
    expect((await inflate(gzipSync(input), 1000)).equals(input)).toBe(true);
    const two = Buffer.concat([gzipSync(input.subarray(0, B)), gzipSync(input.subarray(B))]);
    expect((await inflate(two, 333)).equals(input)).toBe(true);
    if (!hasCmd('pigz')) throw new Error('this test needs "pigz": install it (.ci/run does)');
    expect((await inflate(execFileSync('pigz', ['-c'], { input }), 4096)).equals(input)).toBe(true);
    const mixed = Buffer.concat([await compress(input, B), gzipSync(input), await compress(input, B)]);
    expect((await inflate(mixed, 5000)).equals(Buffer.concat([input, input, input]))).toBe(true);
  });

  it('an empty input is an error, as with zlib (a gzip file is never empty)', async () => {
    expect(isZlibError(await inflateError(Buffer.alloc(0)))).toBe(true);
    const gz = await compress(Buffer.alloc(0), B);
    expect((await inflate(gz, 10)).length).toBe(0);
  });

  it('damage is a zlib error: cut short anywhere, a flipped bit, a wrong length field, trailing bytes; an implausible length is left to zlib', async () => {
    const input = Buffer.concat([text(2 * B), randomBytes(B)]);
    const gz = await compress(input, B);
    const [m1] = membersOf(gz);
    // Cut inside the header, inside a member, and just before the end.
    for (const cut of [5, 19, m1!.length - 3, m1!.length + 100, gz.length - 1]) {
      expect(isZlibError(await inflateError(gz.subarray(0, cut))), `cut at ${cut}`).toBe(true);
    }
    const flipped = Buffer.from(gz);
    flipped[m1!.length + 200]! ^= 0x10;
    expect(isZlibError(await inflateError(flipped))).toBe(true);
    for (const delta of [-7, 9]) {
      const lying = Buffer.from(gz);
      lying.writeUInt32LE(m1!.length + delta, 16);
      expect(isZlibError(await inflateError(lying)), `length off by ${delta}`).toBe(true);
    }
    // A length no member of ours has: the rest is read by zlib, which skips the field (the data is whole).
    const huge = Buffer.from(gz);
    huge.writeUInt32LE(0xfffffff0, 16);
    expect((await inflate(huge, 4096)).equals(input)).toBe(true);
    expect(isZlibError(await inflateError(Buffer.concat([gz, Buffer.from('garbage after the last member')])))).toBe(true);
  });
});
