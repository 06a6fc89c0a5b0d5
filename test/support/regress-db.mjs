// A cache of the cluster that PostgreSQL's `make installcheck-parallel` leaves behind (the
// `regression` database), for test/integration/regression.test.ts: that database's contents
// depend on the server and on the regression suite, not on the Node that runs our tests, so one
// installcheck run serves every later run (the second Node of a CI run, the next CI run).
//
// The cache holds the cleanly shut down data directory and a meta.json written last: the key
// it was made for (server version and binaries, the built regression suite, initdb's and
// pg_regress's options, and FORMAT), the superuser's password and a SHA-256 digest of every
// file of the data directory.
// A cache for another key is stale and one whose digest differs is damaged: either is removed
// and the caller runs installcheck again. A cache is only saved from a clean installcheck run.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync, lstatSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { INITDB_ARGS } from './pg.mjs';

/** Raise when what is cached or how it is made changes: older caches become stale. */
const FORMAT = 1;

function fileSha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * The cache key: what the regression database depends on. `parts` adds the caller's own (e.g.
 * the pg_regress arguments).
 */
export function cacheKey({ regressDir, serverBinDir, parts = [] }) {
  const h = createHash('sha256');
  const add = (label, value) => h.update(`${label}\0${value}\0`);
  add('format', FORMAT);
  add('server', execFileSync(join(serverBinDir, 'postgres'), ['--version'], { encoding: 'utf8' }).trim());
  for (const b of ['postgres', 'initdb']) add(b, fileSha256(realpathSync(join(serverBinDir, b))));
  for (const f of ['pg_regress', 'regress.so', 'parallel_schedule']) add(f, fileSha256(join(regressDir, f)));
  add('initdb', JSON.stringify(INITDB_ARGS));
  for (const p of parts) add('part', p);
  return h.digest('hex').slice(0, 24);
}

/** SHA-256 over every entry of a folder: relative path, kind, mode and contents, in sorted order. */
export function digestDir(dir) {
  const h = createHash('sha256');
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const rel = relative(dir, p);
      if (st.isDirectory()) {
        h.update(`d\0${rel}\0${st.mode & 0o7777}\0`);
        walk(p);
      } else if (st.isSymbolicLink()) {
        h.update(`l\0${rel}\0${readlinkSync(p)}\0`);
      } else {
        h.update(`f\0${rel}\0${st.mode & 0o7777}\0${st.size}\0`);
        h.update(readFileSync(p));
      }
    }
  };
  walk(dir);
  return h.digest('hex');
}

const folderOf = (root, key) => join(root, `db-${key}`);

/**
 * The cached data directory for `key`: { data, meta } when whole; { missing: reason } when
 * there is none or it cannot be used (stale: made for another key; damaged: its files differ
 * from the digest taken when it was saved; those are removed).
 */
export function cachedDataDir(root, key) {
  const folder = folderOf(root, key);
  const metaFile = join(folder, 'meta.json');
  if (!existsSync(metaFile)) {
    const others = existsSync(root) ? readdirSync(root).filter((n) => n.startsWith('db-')) : [];
    return { missing: others.length ? `no cache for this server and regression suite (stale: ${others.join(', ')})` : 'no cache yet' };
  }
  let meta;
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  } catch (e) {
    rmSync(folder, { recursive: true, force: true });
    return { missing: `damaged cache (meta.json: ${e.message}): removed` };
  }
  const data = join(folder, 'data');
  if (meta.key !== key || meta.format !== FORMAT || !existsSync(data)) {
    rmSync(folder, { recursive: true, force: true });
    return { missing: 'stale or incomplete cache: removed' };
  }
  const digest = digestDir(data);
  if (digest !== meta.digest) {
    rmSync(folder, { recursive: true, force: true });
    return { missing: `damaged cache (its files' digest ${digest.slice(0, 12)} is not the ${String(meta.digest).slice(0, 12)} saved): removed` };
  }
  return { data, meta };
}

/**
 * Save a cleanly shut down data directory as the cache for `key` (copied, with ownership and
 * modes; meta.json last, then renamed into place), and remove caches of other keys.
 */
export function saveDataDir(root, key, dataDir, meta = {}) {
  mkdirSync(root, { recursive: true });
  const alive = (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const n of readdirSync(root)) {
    const writer = /\.tmp-(\d+)$/.exec(n);
    if (n.startsWith('db-') && !(writer && alive(Number(writer[1])))) rmSync(join(root, n), { recursive: true, force: true });
  }
  const tmpFolder = join(root, `db-${key}.tmp-${process.pid}`);
  rmSync(tmpFolder, { recursive: true, force: true });
  mkdirSync(tmpFolder);
  execFileSync('cp', ['-a', dataDir, join(tmpFolder, 'data')], { stdio: ['ignore', 'ignore', 'pipe'] });
  for (const transient of ['postmaster.pid', 'postmaster.opts']) rmSync(join(tmpFolder, 'data', transient), { force: true });
  const digest = digestDir(join(tmpFolder, 'data'));
  writeFileSync(join(tmpFolder, 'meta.json'), JSON.stringify({ ...meta, format: FORMAT, key, digest, savedAt: new Date().toISOString() }, null, 2) + '\n');
  const folder = folderOf(root, key);
  rmSync(folder, { recursive: true, force: true });
  renameSync(tmpFolder, folder);
  return folder;
}

/**
 * The regression suite's shared libraries (regress.so, refint.so, autoinc.so) in a folder of
 * the system's temporary folder whose path depends on the cache key only, kept from run to run
 * (a few hundred KB): the regression database's C functions name their library by path, so a
 * cached cluster needs it there in every later run. Made again when missing or different.
 */
export function libDirFor(regressDir, key) {
  const dir = join(tmpdir(), `pgbackup-regress-lib-${key}`);
  const libs = readdirSync(regressDir).filter((f) => f.endsWith('.so'));
  const same = () => libs.every((f) => existsSync(join(dir, f)) && readFileSync(join(dir, f)).equals(readFileSync(join(regressDir, f))));
  if (same()) return dir;
  const fresh = mkdtempSync(join(tmpdir(), 'pgbackup-regress-lib-new-'));
  for (const f of libs) copyFileSync(join(regressDir, f), join(fresh, f));
  chmodSync(fresh, 0o755);
  rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(fresh, dir);
  } catch (e) {
    rmSync(fresh, { recursive: true, force: true });
    if (!same()) throw e; // another run put the same files there meanwhile, else a real failure
  }
  return dir;
}
