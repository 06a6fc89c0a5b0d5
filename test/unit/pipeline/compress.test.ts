import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, createGunzip } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { ParallelGzip } from '../../../src/pipeline/compress.js';

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
