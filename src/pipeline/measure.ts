import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Pass-through that counts bytes and hashes them (sha256), optionally refusing to exceed a limit. */
export class Measure extends Transform {
  bytes = 0;
  private readonly hash: Hash;
  constructor(private readonly limit?: { bytes: number; error: () => Error }) {
    super({ highWaterMark: 1 << 20 });
    this.hash = createHash('sha256');
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.limit && this.bytes > this.limit.bytes) return cb(this.limit.error());
    this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): string {
    return this.hash.copy().digest('hex');
  }
}
