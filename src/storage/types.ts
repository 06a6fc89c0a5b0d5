import { Transform, type Readable } from 'node:stream';

/**
 * Count what passes without touching the source's flow: a 'data' listener would switch the
 * source to flowing mode and lose whatever it emits before the real consumer is attached.
 */
export function counted(body: Readable): { stream: Transform; bytes: () => number } {
  let n = 0;
  const t = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      cb(null, chunk);
    },
  });
  body.on('error', (e) => t.destroy(e));
  body.pipe(t);
  return { stream: t, bytes: () => n };
}

export interface StoredObject {
  key: string;
  size: number;
  lastModified: Date;
  /** head() on S3: the object's ETag (quotes removed) and user metadata. */
  etag?: string;
  metadata?: Record<string, string>;
}

export interface PutStreamOptions {
  signal: AbortSignal;
  contentType?: string;
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
  /** Bytes per multipart part (S3 only). */
  partSize?: number;
  /** Parts in flight (S3 only). */
  queueSize?: number;
  /**
   * When another writer created `key` first: the key to try next (the folder backend
   * retries; S3 refuses with If-None-Match and reports it). Without it, an existing key fails.
   */
  nextKey?: (taken: string) => string;
  /** Warnings (a failed clean-up) go here; they never replace the first error. */
  warn?: (msg: string, err?: unknown) => void;
}

export interface PutResult {
  size: number;
  /** The key the object was stored under (another than asked when it was taken). */
  key: string;
}

export interface GetOptions {
  signal: AbortSignal;
  /** Inclusive byte range. */
  start?: number;
  end?: number;
  /** The last `suffix` bytes (the whole object when it is shorter); instead of start/end. */
  suffix?: number;
}

export interface SpliceOptions {
  signal: AbortSignal;
  contentType?: string;
  /** S3: the new object's metadata (default: the source's) and tags. */
  metadata?: Record<string, string> | undefined;
  tags?: Record<string, string> | undefined;
  /** Bytes of the source copied so far. */
  onProgress?: (bytes: number) => void;
  /** S3, for tests: the first part's size (default 5 MiB) and the copy parts' (default 1 GiB). */
  minPartSize?: number;
  copyPartSize?: number;
}

/** One interface, two backends (S3, folder). Keys are relative to the target. */
export interface Storage {
  /** `s3://bucket/prefix/` or the folder path, for messages. */
  readonly description: string;
  readonly kind: 's3' | 'folder';
  /** Stream `body` to `key`; nothing is visible under `key` unless the whole body arrived. */
  putStream(key: string, body: Readable, opts: PutStreamOptions): Promise<PutResult>;
  /**
   * Folders only: remove the temporary files (`.XXXXXXXXXXXX.partial`) under `prefix` not
   * written to for `olderThanMs`, left by a backup that was killed (OOM, SIGKILL); their paths.
   */
  removeStalePartials?(prefix: string, olderThanMs: number, signal: AbortSignal): Promise<string[]>;
  /** Write a small object whole (manifests). `ifAbsent` refuses to replace an existing one. */
  putBytes(key: string, body: Buffer, opts: { signal: AbortSignal; contentType?: string; ifAbsent?: boolean; metadata?: Record<string, string>; tags?: Record<string, string>; warn?: (msg: string, err?: unknown) => void }): Promise<void>;
  get(key: string, opts: GetOptions): Promise<Readable>;
  getBytes(key: string, signal: AbortSignal): Promise<Buffer | null>;
  head(key: string, signal: AbortSignal): Promise<StoredObject | null>;
  list(prefix: string, signal: AbortSignal): AsyncIterable<StoredObject>;
  /** Delete the object at `key` (false: it was not there, where the backend can tell). */
  remove?(key: string, signal: AbortSignal): Promise<boolean>;
  /**
   * Key rotation: write `dest` = `head` + the bytes of `src` from offset `from` on, replacing
   * `dest`. S3 copies the bytes server-side; a folder writes a temporary file and renames it.
   */
  spliceCopy?(src: string, from: number, head: Buffer, dest: string, opts: SpliceOptions): Promise<void>;
  /** Replace `dest` with `src` (S3: a server-side copy, then `src` deleted; folder: a rename). */
  replace?(src: string, dest: string, opts: { signal: AbortSignal; tags?: Record<string, string> }): Promise<void>;
  /** S3 only: the object's tags (null when the object does not exist). */
  getTags?(key: string, signal: AbortSignal): Promise<Record<string, string> | null>;
  /** S3 only: replace the object's tags. */
  putTags?(key: string, tags: Record<string, string>, signal: AbortSignal): Promise<void>;
}
