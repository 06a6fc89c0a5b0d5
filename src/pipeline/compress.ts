/**
 * Parallel gzip: the input is cut into fixed-size blocks, each compressed on libuv's
 * thread pool as an independent gzip member, and the members are written in input order.
 * A multi-member gzip file is standard (RFC 1952 §2.2): gunzip, pigz -d and zlib read it
 * as one stream. Memory is bounded: at most `concurrency` blocks in flight.
 *
 * Each member's header carries its own length in an extra field (RFC 1952 §2.3.1.1, FEXTRA:
 * subfield 'P','B', 4 bytes, little-endian), as BGZF does for genomics files. gunzip and
 * every other reader skip the field; ParallelGunzip uses it to cut the stream into members
 * without inflating, and inflates several at once.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { availableParallelism } from 'node:os';
import { createGunzip, gzip as gzipCb, gunzip as gunzipCb, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';

const gzip = promisify(gzipCb) as (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>;
const gunzip = promisify(gunzipCb) as (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>;

/** The extra subfield's id: 'P', 'B'. */
const SI1 = 0x50;
const SI2 = 0x42;
/** Header with the length field: 10 fixed bytes, XLEN (2), SI1 SI2 LEN (4), the length (4). */
const SIZED_HEADER = 20;
/** Members inflated in one piece are at most this large, in and out; larger ones are read as a stream. */
const MAX_MEMBER = 16 * 1024 * 1024;

/**
 * Work started in order on the thread pool, its results handed on in the same order, with at
 * most `limit` pieces in flight. A failure surfaces when its turn comes.
 */
class InOrder<T> {
  private readonly inflight: Promise<T>[] = [];
  constructor(private readonly limit: number) {}
  add(p: Promise<T>): void {
    p.catch(() => undefined); // observed when awaited in turn
    this.inflight.push(p);
  }
  /** Hand on the oldest results until fewer than the limit are in flight (`all`: until none). */
  async emit(to: (r: T) => void, all = false): Promise<void> {
    while (this.inflight.length >= (all ? 1 : this.limit)) to(await this.inflight.shift()!);
  }
}

/** The 20-byte header of a member whose whole length (header included) is `total`. */
function sizedHeader(total: number): Buffer {
  const h = Buffer.alloc(SIZED_HEADER);
  h[0] = 0x1f;
  h[1] = 0x8b;
  h[2] = 8; // deflate
  h[3] = 0x04; // FEXTRA
  // MTIME 0, XFL 0, OS 255 (unknown)
  h[9] = 0xff;
  h.writeUInt16LE(8, 10);
  h[12] = SI1;
  h[13] = SI2;
  h.writeUInt16LE(4, 14);
  h.writeUInt32LE(total, 16);
  return h;
}

/** A zlib-style error (classified as damaged data like zlib's own). */
function zError(message: string): Error {
  return Object.assign(new Error(message), { code: 'Z_DATA_ERROR' });
}

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
  /** The block being filled, and how much of it is. */
  private cur: Buffer | null = null;
  private curLen = 0;
  /**
   * Blocks whose compression has finished, for reuse: input is copied into memory already in
   * use instead of a fresh megabyte per block (allocating and faulting in fresh pages cost
   * about a second of CPU per 600 MiB).
   */
  private readonly pool: Buffer[] = [];
  private readonly inflight: InOrder<Buffer[]>;
  private dispatched = 0;

  constructor(opts: GzipOptions) {
    super({ highWaterMark: 1 << 20 });
    this.level = opts.level;
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.inflight = new InOrder(Math.max(1, opts.concurrency ?? availableParallelism() + 1));
  }

  private dispatch(): void {
    const buf = this.cur ?? Buffer.alloc(0);
    const block = buf.subarray(0, this.curLen);
    this.cur = null;
    this.curLen = 0;
    // One output chunk per block (a gzip member is never larger than its input plus a little):
    // the default 16 KiB chunks cost a JavaScript callback each.
    const p = gzip(block, { level: this.level, memLevel: 9, chunkSize: Math.max(64 * 1024, block.length + 64 * 1024) }).then((m) => {
      if (buf.length === this.blockSize) this.pool.push(buf);
      // zlib's own 10-byte header (no flags) becomes one that carries the member's length.
      if (m[0] !== 0x1f || m[1] !== 0x8b || m[3] !== 0) throw new Error('unexpected gzip header from zlib');
      return [sizedHeader(m.length - 10 + SIZED_HEADER), m.subarray(10)];
    });
    this.inflight.add(p);
    this.dispatched++;
  }

  private readonly emitMember = (parts: Buffer[]): void => {
    for (const b of parts) this.push(b);
  };

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    void (async () => {
      let at = 0;
      while (at < chunk.length) {
        this.cur ??= this.pool.pop() ?? Buffer.allocUnsafeSlow(this.blockSize);
        const n = chunk.copy(this.cur, this.curLen, at);
        this.curLen += n;
        at += n;
        if (this.curLen === this.blockSize) {
          this.dispatch();
          await this.inflight.emit(this.emitMember);
        }
      }
    })().then(() => cb(), (e: Error) => cb(e));
  }

  override _flush(cb: TransformCallback): void {
    void (async () => {
      if (this.curLen > 0 || this.dispatched === 0) this.dispatch();
      await this.inflight.emit(this.emitMember, true);
    })().then(() => cb(), (e: Error) => cb(e));
  }
}


/**
 * gunzip for one or many members; checks every member's CRC-32 and length. Members that carry
 * their length (ours) are inflated several at once on the thread pool and written in order;
 * from the first member that does not (an older backup, another tool's gzip), the rest is
 * read as one stream by zlib.
 */
export class ParallelGunzip extends Transform {
  private parts: Buffer[] = [];
  private partsLen = 0;
  private readonly inflight: InOrder<Buffer>;
  private readonly emitOne = (b: Buffer): void => void this.push(b);
  /** Set once a member without a length field is seen: zlib's streaming gunzip reads the rest. */
  private stream: Transform | null = null;
  private streamError: Error | null = null;
  private members = 0;

  constructor(opts: { concurrency?: number } = {}) {
    super({ highWaterMark: 1 << 20 });
    this.inflight = new InOrder(Math.max(1, opts.concurrency ?? availableParallelism() + 1));
  }

  /** The first `n` buffered bytes as one buffer (n <= partsLen), without consuming them. */
  private peek(n: number): Buffer {
    if (this.parts[0]!.length >= n) return this.parts[0]!;
    const all = Buffer.concat(this.parts, this.partsLen);
    this.parts = [all];
    return all;
  }

  private takeBytes(n: number): Buffer {
    const all = this.peek(n);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    if (rest.length) this.parts[0] = rest;
    else this.parts.shift();
    this.partsLen -= n;
    return out;
  }

  /**
   * The length of the member at the front, if it carries one and it is whole in the buffer;
   * 0: wait for more input; -1: not one of ours (or an implausible length), read as a stream.
   */
  private frontMember(): number {
    if (this.partsLen < SIZED_HEADER) return 0;
    const h = this.peek(SIZED_HEADER);
    const ours = h[0] === 0x1f && h[1] === 0x8b && h[2] === 8 && h[3] === 0x04 && h.readUInt16LE(10) === 8 && h[12] === SI1 && h[13] === SI2 && h.readUInt16LE(14) === 4;
    if (!ours) return -1;
    const total = h.readUInt32LE(16);
    if (total < SIZED_HEADER + 10 || total > MAX_MEMBER) return -1;
    return this.partsLen >= total ? total : 0;
  }

  private async drain(final: boolean): Promise<void> {
    while (!this.stream) {
      const n = this.frontMember();
      if (n === 0 && !final) return;
      if (n <= 0) {
        // Nothing at all is not an empty gzip file: zlib says so at the end.
        if (this.partsLen === 0 && !(final && this.members === 0)) return;
        await this.toStream();
        return;
      }
      const member = this.takeBytes(n);
      this.members++;
      // ISIZE (the last 4 bytes) says how large the output is: zlib's output in one chunk of that size.
      const size = member.readUInt32LE(n - 4);
      this.inflight.add(
        gunzip(member, { chunkSize: Math.max(64 * 1024, Math.min(size, MAX_MEMBER) + 1), maxOutputLength: MAX_MEMBER }).catch((e: unknown) => {
          throw (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? zError(`a gzip member inflates to more than ${MAX_MEMBER} bytes`) : e;
        }),
      );
      await this.inflight.emit(this.emitOne);
    }
  }

  /** From here on, zlib's streaming gunzip: what is in flight first, then the buffered bytes. */
  private async toStream(): Promise<void> {
    await this.inflight.emit(this.emitOne, true);
    const g = createGunzip({ chunkSize: 256 * 1024 });
    g.on('data', (c: Buffer) => this.push(c));
    g.on('error', (e: Error) => (this.streamError ??= e));
    this.stream = g;
    const rest = this.parts;
    this.parts = [];
    this.partsLen = 0;
    for (const b of rest) await this.streamWrite(b);
  }

  /** One chunk into the streaming gunzip, resolved once zlib has taken it (its output pushed). */
  private streamWrite(chunk: Buffer): Promise<void> {
    const g = this.stream!;
    return new Promise((resolve, reject) => {
      if (this.streamError) return reject(this.streamError);
      // After an error zlib may never call the write's callback: the error settles it.
      const onError = (e: Error) => reject(e);
      g.once('error', onError);
      g.write(chunk, (e) => {
        g.off('error', onError);
        const err = e ?? this.streamError;
        if (err) reject(err);
        else resolve();
      });
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.stream) {
      this.streamWrite(chunk).then(() => cb(), (e: Error) => cb(e));
      return;
    }
    this.parts.push(chunk);
    this.partsLen += chunk.length;
    this.drain(false).then(() => cb(), (e: Error) => cb(e));
  }

  override _flush(cb: TransformCallback): void {
    void (async () => {
      // Bytes left that are not a whole member of ours: zlib says what is wrong with them.
      await this.drain(true);
      await this.inflight.emit(this.emitOne, true);
      if (this.stream) {
        const g = this.stream;
        await new Promise<void>((resolve, reject) => {
          g.once('end', resolve);
          g.once('error', reject);
          if (this.streamError) reject(this.streamError);
          g.end();
        });
      }
    })().then(() => cb(), (e: Error) => cb(e));
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.stream?.destroy();
    cb(err);
  }
}

export function createDecompressor(): Transform {
  return new ParallelGunzip();
}
