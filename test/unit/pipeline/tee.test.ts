import { describe, it, expect } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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

function sink(delay: () => Promise<void>) {
  const got: Buffer[] = [];
  const w = new Writable({
    highWaterMark: CHUNK,
    write(c: Buffer, _e, cb) {
      got.push(c);
      delay().then(() => cb(), cb);
    },
  });
  return { w, bytes: () => Buffer.concat(got) };
}

describe('Tee', () => {
  it('every branch gets every byte; the slowest branch sets the pace (bounded read-ahead)', async () => {
    const src = source(400);
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
    expect(fast.bytes().length).toBe(400 * CHUNK);
    expect(slow.bytes().equals(fast.bytes())).toBe(true);
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
    expect(good.bytes().length).toBe(200 * CHUNK);
    expect(await badDone).toMatch(/target gone|Premature close/);
  });
});
