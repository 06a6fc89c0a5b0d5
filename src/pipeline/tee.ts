import { Readable, Writable } from 'node:stream';

/**
 * One writable, several readable branches that each get every chunk (the same Buffer, not a
 * copy). Backpressure: a chunk is taken only when every live branch has room for it, so the
 * slowest consumer sets the pace and memory stays bounded (one highWaterMark per branch).
 * A branch can be dropped (its consumer failed): the others go on without it.
 */
export class Tee extends Writable {
  readonly branches: TeeBranch[];
  constructor(n: number, highWaterMark = 1 << 20) {
    super({ highWaterMark });
    this.branches = Array.from({ length: n }, () => new TeeBranch(highWaterMark));
  }

  /** Stop feeding branch `i` (its consumer failed) and destroy it; the rest go on. */
  drop(i: number): void {
    const b = this.branches[i]!;
    if (b.dropped) return;
    b.dropped = true;
    b.wake();
    // Without an error: its consumer already has one, and nobody may be listening any more.
    if (!b.destroyed) b.destroy();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    let waiting = 0;
    let called = false;
    const done = () => {
      if (--waiting === 0 && !called) {
        called = true;
        cb();
      }
    };
    for (const b of this.branches) {
      if (b.dropped || b.destroyed) continue;
      if (!b.push(chunk)) {
        waiting++;
        b.onRoom(done);
      }
    }
    if (waiting === 0) cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    for (const b of this.branches) if (!b.dropped && !b.destroyed) b.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Finished normally (autoDestroy): the branches end when read out. Failed: they fail too.
    if (err) for (const b of this.branches) if (!b.dropped && !b.destroyed) b.destroy(err);
    cb(err);
  }
}

export class TeeBranch extends Readable {
  dropped = false;
  private waiters: Array<() => void> = [];
  constructor(highWaterMark: number) {
    super({ highWaterMark });
  }
  onRoom(f: () => void): void {
    this.waiters.push(f);
  }
  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  override _read(): void {
    this.wake();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // A destroyed branch never asks for more: whoever waits on it must not wait forever.
    this.wake();
    cb(err);
  }
}
