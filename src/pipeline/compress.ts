/**
 * Parallel gzip: the input is cut into fixed-size blocks, each compressed on libuv's
 * thread pool as an independent gzip member, and the members are written in input order.
 * A multi-member gzip file is standard (RFC 1952 §2.2): gunzip, pigz -d and zlib read it
 * as one stream. Memory is bounded: at most `concurrency` blocks in flight.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { availableParallelism } from 'node:os';
import { createGunzip, gzip as gzipCb, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';

const gzip = promisify(gzipCb) as (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>;

export interface GzipOptions {
  level: number;
  /** Bytes of input per gzip member. */
  blockSize?: number;
  /** Blocks compressed at once. */
  concurrency?: number;
}

export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
export const DEFAULT_LEVEL = 6;

export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private parts: Buffer[] = [];
  private partsLen = 0;
  private readonly inflight: Promise<Buffer>[] = [];
  private dispatched = 0;

  constructor(opts: GzipOptions) {
    super({ highWaterMark: 1 << 20 });
    this.level = opts.level;
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.concurrency = Math.max(1, opts.concurrency ?? availableParallelism() + 1);
  }

  private dispatch(block: Buffer): void {
    // One output chunk per block (a gzip member is never larger than its input plus a little):
    // the default 16 KiB chunks cost a JavaScript callback each.
    const p = gzip(block, { level: this.level, memLevel: 9, chunkSize: Math.max(64 * 1024, block.length + 64 * 1024) });
    p.catch(() => undefined); // observed when awaited in order
    this.inflight.push(p);
    this.dispatched++;
  }

  private takeBlock(): Buffer {
    const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLen);
    const block = all.subarray(0, this.blockSize);
    const rest = all.subarray(this.blockSize);
    this.parts = rest.length ? [rest] : [];
    this.partsLen = rest.length;
    return block;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.parts.push(chunk);
    this.partsLen += chunk.length;
    if (this.partsLen < this.blockSize) return cb();
    void (async () => {
      while (this.partsLen >= this.blockSize) {
        this.dispatch(this.takeBlock());
        while (this.inflight.length >= this.concurrency) this.push(await this.inflight.shift()!);
      }
    })().then(() => cb(), (e: Error) => cb(e));
  }

  override _flush(cb: TransformCallback): void {
    void (async () => {
      if (this.partsLen > 0 || this.dispatched === 0) {
        this.dispatch(this.parts.length ? Buffer.concat(this.parts, this.partsLen) : Buffer.alloc(0));
        this.parts = [];
        this.partsLen = 0;
      }
      while (this.inflight.length) this.push(await this.inflight.shift()!);
    })().then(() => cb(), (e: Error) => cb(e));
  }
}


/** gunzip for one or many members; checks every member's CRC-32 and length. */
export function createDecompressor(): Transform {
  return createGunzip({ chunkSize: 256 * 1024 });
}
