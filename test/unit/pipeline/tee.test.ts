import { describe, it, expect } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { Tee } from '../../../src/pipeline/tee.js';

const CHUNK = 64 * 1024;

/** A source that counts how far it has been read. */
function source(chunks: number) {
  let produced = 0;
  const r = new Readable({
    highWaterMark: CHUNK,
    read() {
      if (produced === chunks) return this.push(null);
      this.push(Buffer.alloc(CHUNK, produced++ % 256));
    },
  });
  return { r, produced: () => produced };
}

/** A consumer that keeps a digest of what it got (not the bytes: tens of MiB to concatenate). */
function sink(delay: () => Promise<void>) {
  const got = createHash('sha256');
  let length = 0;
  const w = new Writable({
    highWaterMark: CHUNK,
    write(c: Buffer, _e, cb) {
      got.update(c);
      length += c.length;
      delay().then(() => cb(), cb);
    },
  });
  return { w, length: () => length, digest: () => got.copy().digest('hex') };
}

/** The digest of source(chunks)'s bytes. */
function sourceDigest(chunks: number): string {
  const h = createHash('sha256');
  for (let i = 0; i < chunks; i++) h.update(Buffer.alloc(CHUNK, i % 256));
  return h.digest('hex');
}

describe('Tee', () => {
  it('every branch gets every byte; the slowest branch sets the pace (bounded read-ahead)', async () => {
    // 100 chunks: far more than the bound checked below, so a Tee that buffered the whole
    // stream would fail it.
    const src = source(100);
    const tee = new Tee(2, 4 * CHUNK);
    let maxAhead = 0;
    const fast = sink(() => Promise.resolve());
    let slowBytes = 0;
    const slow = sink(async () => {
      slowBytes += CHUNK;
      maxAhead = Math.max(maxAhead, src.produced() * CHUNK - slowBytes);
      await new Promise((r) => setImmediate(r));
    });
    await Promise.all([pipeline(src.r, tee), pipeline(tee.branches[0]!, fast.w), pipeline(tee.branches[1]!, slow.w)]);
    expect(fast.length()).toBe(100 * CHUNK);
    expect(fast.digest()).toBe(sourceDigest(100));
    expect(slow.digest()).toBe(fast.digest());
    // Never more than a few buffers' worth ahead of the slowest consumer, not the whole stream.
    expect(maxAhead).toBeLessThanOrEqual(16 * CHUNK);
  });

  it('a dropped branch no longer holds the others back', async () => {
    const src = source(200);
    const tee = new Tee(2, 2 * CHUNK);
    const good = sink(() => Promise.resolve());
    let n = 0;
    const bad = new Writable({
      write(_c, _e, cb) {
        if (++n === 3) {
          tee.drop(1);
          return cb(new Error('target gone'));
        }
        cb();
      },
    });
    const badDone = pipeline(tee.branches[1]!, bad).catch((e: Error) => e.message);
    await Promise.all([pipeline(src.r, tee), pipeline(tee.branches[0]!, good.w)]);
    expect(good.length()).toBe(200 * CHUNK);
    expect(good.digest()).toBe(sourceDigest(200));
    expect(await badDone).toMatch(/target gone|Premature close/);
  });
});
