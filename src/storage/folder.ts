import { createReadStream, createWriteStream } from 'node:fs';
import { link, lstat, mkdir, open, readdir, readFile, realpath, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageError, UsageError, messageOf } from '../support/errors.js';
import { keyProblem, prefixProblem } from '../model/keys.js';
import type { GetOptions, PutResult, PutStreamOptions, SpliceOptions, Storage, StoredObject } from './types.js';

function wrap(e: unknown, what: string): StorageError {
  if (e instanceof StorageError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  const hint =
    code === 'ENOSPC' ? ' (no space left on device)'
    : code === 'EFBIG' ? ' (file too large for this file system or limit)'
    : code === 'EACCES' || code === 'EPERM' ? ' (permission denied)'
    : code === 'ENOENT' ? ' (not found)'
    : code === 'EROFS' ? ' (read-only file system)'
    : '';
  return new StorageError(code ?? 'FOLDER', `${what}: ${messageOf(e)}${hint}`, { cause: e });
}

/** The temporary names putStream and putBytes write to before the final link. */
const PARTIAL_RE = /^\.[0-9a-f]{12}\.partial$/;

/** A local folder as a backup target: write to a temporary name, fsync, rename. */
/** A folder's entries, or null when it is gone (or not a folder): walks skip it. */
async function readFolder(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw wrap(e, `cannot list ${dir}`);
  }
}

export class FolderStorage implements Storage {
  readonly kind = 'folder' as const;
  readonly root: string;
  readonly description: string;
  constructor(path: string) {
    this.root = resolve(path);
    this.description = path;
  }

  private pathOf(key: string): string {
    const p = resolve(this.root, key);
    if (p !== this.root && !p.startsWith(this.root + sep)) throw new StorageError('BAD_KEY', `key escapes the folder: ${key}`);
    return p;
  }

  /** The target's real path (the root itself may be a symbolic link); null while it does not exist. */
  private async realRoot(): Promise<string | null> {
    return realpath(this.root).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw wrap(e, `cannot resolve ${this.root}`);
    });
  }

  private inside(real: string, p: string): boolean {
    return p === real || p.startsWith(real.endsWith(sep) ? real : real + sep);
  }

  private escape(link: string, to: string): StorageError {
    return new StorageError('SYMLINK_ESCAPE', `${link} is a symbolic link leading out of the folder target ${this.description} (to ${to}); refused: nothing is read or written outside the target`);
  }

  /**
   * The path of `key` (or of a listing prefix), after checking that it stays inside the target:
   * the key is well formed (exit 2 otherwise), and no existing component of the path is a
   * symbolic link leading out of the target (exit 4, naming it).
   */
  private async confined(key: string, prefix = false): Promise<string> {
    const problem = prefix ? prefixProblem(key) : keyProblem(key);
    if (problem) throw new UsageError(`key "${key}": ${problem}`, { code: 'BAD_KEY' });
    const p = this.pathOf(key.replace(/\/+$/, ''));
    const real = await this.realRoot();
    if (real === null) return p;
    let cur = this.root;
    for (const seg of relative(this.root, p).split(sep).filter(Boolean)) {
      cur = join(cur, seg);
      let st;
      try {
        st = await lstat(cur);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') break;
        throw wrap(e, `cannot stat ${cur}`);
      }
      if (!st.isSymbolicLink()) continue;
      const to = await realpath(cur).catch(() => null);
      if (to === null || !this.inside(real, to)) throw this.escape(cur, to ?? '(nowhere: a dangling link)');
    }
    return p;
  }

  private async fsyncDir(dir: string): Promise<void> {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  }

  async putStream(key: string, body: Readable, opts: PutStreamOptions): Promise<PutResult> {
    const final = await this.confined(key);
    const dir = dirname(final);
    const tmp = join(dir, `.${randomBytes(6).toString('hex')}.partial`);
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw wrap(e, `cannot create folder ${dir}`);
    }
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
    try {
      await pipeline(body, out, { signal: opts.signal });
      const size = out.bytesWritten;
      const h = await open(tmp, 'r+');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
      // link() refuses to replace an existing file: a backup never overwrites another.
      let key2 = key;
      let target = final;
      for (;;) {
        try {
          await link(tmp, target);
          break;
        } catch (le) {
          if ((le as NodeJS.ErrnoException).code !== 'EEXIST' || !opts.nextKey) throw le;
          key2 = opts.nextKey(key2);
          target = await this.confined(key2);
        }
      }
      await unlink(tmp);
      await this.fsyncDir(dir);
      return { size, key: key2 };
    } catch (e) {
      await unlink(tmp).catch((ue: NodeJS.ErrnoException) => {
        if (ue.code !== 'ENOENT') opts.warn?.(`could not remove partial file ${tmp}`, ue);
      });
      // A file-system error is ours to name; anything else (the body's own error, an abort) passes.
      if ((e as NodeJS.ErrnoException)?.syscall) throw wrap(e, `cannot write ${final}`);
      throw e;
    }
  }

  async putBytes(key: string, body: Buffer, opts: { signal: AbortSignal; ifAbsent?: boolean }): Promise<void> {
    const final = await this.confined(key);
    const dir = dirname(final);
    const tmp = join(dir, `.${randomBytes(6).toString('hex')}.partial`);
    try {
      await mkdir(dir, { recursive: true });
      const h = await open(tmp, 'wx', 0o600);
      try {
        await h.writeFile(body);
        await h.sync();
      } finally {
        await h.close();
      }
      if (opts.ifAbsent) {
        try {
          await link(tmp, final);
        } catch (le) {
          if ((le as NodeJS.ErrnoException).code === 'EEXIST') throw new StorageError('EXISTS', `${final} already exists`);
          throw le;
        }
        await unlink(tmp);
      } else {
        await rename(tmp, final);
      }
      await this.fsyncDir(dir);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw wrap(e, `cannot write ${final}`);
    }
  }

  async get(key: string, opts: GetOptions): Promise<Readable> {
    const p = await this.confined(key);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch (e) {
      throw wrap(e, `cannot read ${p}`);
    }
    const start = opts.suffix !== undefined ? Math.max(0, size - opts.suffix) : opts.start;
    const end = opts.suffix !== undefined ? undefined : opts.end;
    const s = createReadStream(p, { start, end, highWaterMark: 1 << 20, signal: opts.signal });
    return s;
  }

  async getBytes(key: string): Promise<Buffer | null> {
    const p = await this.confined(key);
    try {
      return await readFile(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw wrap(e, `cannot read ${key}`);
    }
  }

  async head(key: string): Promise<StoredObject | null> {
    const p = await this.confined(key);
    try {
      const s = await stat(p);
      if (!s.isFile()) return null;
      return { key, size: s.size, lastModified: s.mtime };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw wrap(e, `cannot stat ${key}`);
    }
  }

  async removeStalePartials(prefix: string, olderThanMs: number, signal: AbortSignal): Promise<string[]> {
    const removed: string[] = [];
    const cutoff = Date.now() - olderThanMs;
    // mtime: a backup still writing its file keeps it fresh, however long it runs.
    for await (const p of this.partials(prefix, signal)) {
      const full = join(this.root, ...p.key.split('/'));
      if (p.lastModified.getTime() < cutoff && (await unlink(full).then(() => true, () => false))) removed.push(full);
    }
    return removed;
  }

  /**
   * The temporary files (`.XXXXXXXXXXXX.partial`) under `prefix`, as keys relative to the
   * target, with their last write time (`list` leaves hidden files out).
   */
  async *partials(prefix: string, signal: AbortSignal): AsyncIterable<StoredObject> {
    const stack = [await this.confined(prefix, true)];
    while (stack.length) {
      signal.throwIfAborted();
      const dir = stack.pop()!;
      const entries = await readFolder(dir);
      if (entries === null) continue;
      for (const ent of entries) {
        const full = join(dir, ent.name);
        if (ent.isDirectory()) stack.push(full);
        else if (ent.isFile() && PARTIAL_RE.test(ent.name)) {
          const s = await stat(full).catch(() => null);
          if (s) yield { key: relative(this.root, full).split(sep).join('/'), size: s.size, lastModified: s.mtime };
        }
      }
    }
  }

  /** Delete the file at `key`; false when it was already gone. */
  async remove(key: string): Promise<boolean> {
    const p = await this.confined(key);
    try {
      await unlink(p);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw wrap(e, `cannot delete ${p}`);
    }
  }

  async spliceCopy(src: string, from: number, head: Buffer, dest: string, opts: SpliceOptions): Promise<void> {
    const srcPath = await this.confined(src);
    const final = await this.confined(dest);
    const dir = dirname(final);
    const tmp = join(dir, `.${randomBytes(6).toString('hex')}.partial`);
    try {
      const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
      let copied = 0;
      async function* body() {
        yield head;
        for await (const c of createReadStream(srcPath, { start: from, highWaterMark: 1 << 20, signal: opts.signal })) {
          copied += (c as Buffer).length;
          opts.onProgress?.(copied);
          yield c as Buffer;
        }
      }
      await pipeline(body, out, { signal: opts.signal });
      const h = await open(tmp, 'r+');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
      await rename(tmp, final);
      await this.fsyncDir(dir);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      if ((e as NodeJS.ErrnoException)?.syscall) throw wrap(e, `cannot write ${final}`);
      throw e;
    }
  }

  async replace(src: string, dest: string): Promise<void> {
    const from = await this.confined(src);
    const to = await this.confined(dest);
    try {
      await rename(from, to);
      await this.fsyncDir(dirname(to));
    } catch (e) {
      throw wrap(e, `cannot rename ${from} to ${to}`);
    }
  }

  /** Remove the folder at `key` when it is empty; false when it is not (or is gone). */
  async removeEmptyFolder(key: string): Promise<boolean> {
    const p = await this.confined(key);
    try {
      await rmdir(p);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw wrap(e, `cannot remove folder ${p}`);
    }
  }

  async *list(prefix: string, signal: AbortSignal): AsyncIterable<StoredObject> {
    // Walk the deepest folder the prefix names fully, then filter by the prefix.
    const slash = prefix.lastIndexOf('/');
    const base = slash >= 0 ? prefix.slice(0, slash) : '';
    if (prefixProblem(prefix)) throw new UsageError(`prefix "${prefix}": ${prefixProblem(prefix)}`, { code: 'BAD_KEY' });
    const start = await this.confined(base, true);
    const stack = [start];
    const real = await this.realRoot();
    const seen = new Set<string>();
    while (stack.length) {
      signal.throwIfAborted();
      const dir = stack.pop()!;
      const entries = await readFolder(dir);
      if (entries === null) continue;
      for (const ent of entries) {
        const full = join(dir, ent.name);
        let isDir = ent.isDirectory();
        let isFile = ent.isFile();
        if (ent.isSymbolicLink()) {
          // Followed only while it stays inside the target (each real folder walked once).
          const to = await realpath(full).catch(() => null);
          if (to === null || real === null || !this.inside(real, to)) throw this.escape(full, to ?? '(nowhere: a dangling link)');
          const st = await stat(full);
          isDir = st.isDirectory() && !seen.has(to);
          isFile = st.isFile();
          if (isDir) seen.add(to);
        }
        if (isDir) {
          stack.push(full);
        } else if (isFile && !ent.name.startsWith('.')) {
          const key = relative(this.root, full).split(sep).join('/');
          if (!key.startsWith(prefix)) continue;
          const s = await stat(full).catch(() => null);
          if (s) yield { key, size: s.size, lastModified: s.mtime };
        }
      }
    }
  }
}
