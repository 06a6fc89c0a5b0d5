// A throwaway PostgreSQL cluster: initdb into a temp folder, a free port on 127.0.0.1.
// As root, the server runs as the unprivileged "postgres" user (initdb refuses root).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, chownSync, writeFileSync, rmSync, readdirSync, existsSync, chmodSync, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Directories holding initdb/postgres of the given major (or any). */
export function serverBinDirs() {
  const dirs = [];
  if (process.env.PGBACKUP_TEST_PG_BINDIR) dirs.push(process.env.PGBACKUP_TEST_PG_BINDIR);
  try {
    dirs.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {}
  for (const base of ['/usr/lib/postgresql', '/usr/local/lib/postgresql']) {
    try {
      for (const v of readdirSync(base).sort((a, b) => Number(b) - Number(a))) dirs.push(join(base, v, 'bin'));
    } catch {}
  }
  return [...new Set(dirs)].filter((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'postgres')));
}

/** Client binaries (pg_dump, psql) directory matching or newer than the server. */
export function clientBinDir() {
  for (const d of serverBinDirs()) if (existsSync(join(d, 'pg_dump')) && existsSync(join(d, 'psql'))) return d;
  throw new Error('no PostgreSQL client binaries found (pg_dump, psql)');
}

function ids() {
  if (process.getuid && process.getuid() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** initdb's options besides the folder and the password file (the regression database cache's key holds them). */
export const INITDB_ARGS = ['-U', 'postgres', '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'];

/**
 * Start a cluster. `binDir` holds initdb and postgres. Returns { port, url(db), password, stop() }.
 * The superuser is "postgres" with a password (scram) over TCP. `data`: start on a copy of this
 * (cleanly shut down) data directory instead of a new one from initdb; `password` is then the
 * one that directory's cluster was made with.
 */
export async function startCluster({ binDir = serverBinDirs()[0], password = 'S3cr3t-pw-Zq9', data: from } = {}) {
  if (!binDir) throw new Error('no PostgreSQL server binaries found (initdb, postgres)');
  const dir = mkdtempSync(join(tmpdir(), 'pgbackup-pg-'));
  const { uid, gid } = ids();
  if (uid !== undefined) chownSync(dir, uid, gid);
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, password + '\n');
  if (uid !== undefined) chownSync(pwfile, uid, gid);
  if (from) {
    execFileSync('cp', ['-a', from, data], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (uid !== undefined) execFileSync('chown', ['-R', `${uid}:${gid}`, data]);
    chmodSync(data, 0o700);
  } else {
    execFileSync(join(binDir, 'initdb'), ['-D', data, `--pwfile=${pwfile}`, ...INITDB_ARGS], {
      uid,
      gid,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }
  const port = await freePort();
  // The server's log goes to a file, not to a pipe this process reads: a pipe nobody drains for a
  // while (this process busy, or blocked in a synchronous call) fills up, and then every backend
  // that logs (an error, a terminated session) blocks on it, connections and DROP DATABASE included.
  const logFile = join(dir, 'postgres.log');
  const logFd = openSync(logFile, 'a', 0o600);
  let child;
  try {
    child = spawn(
      join(binDir, 'postgres'),
      ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=50'],
      { uid, gid, stdio: ['ignore', 'ignore', logFd], detached: false },
    );
  } finally {
    closeSync(logFd);
  }
  /** The end of the server's log, for error messages. */
  const logTail = () => {
    try {
      return readFileSync(logFile, 'utf8').slice(-8000);
    } catch {
      return '';
    }
  };
  // Wait for it to accept connections.
  const pg = (await import('pg')).default;
  const deadline = Date.now() + 30000;
  // Not started: nothing left behind (no server, no folder).
  const fail = (err) => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    return err;
  };
  for (;;) {
    if (child.exitCode !== null) throw fail(new Error(`postgres exited: ${logTail()}`));
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (e) {
      await c.end().catch(() => {});
      if (Date.now() > deadline) throw fail(new Error(`postgres did not start: ${e.message}\n${logTail()}`, { cause: e }));
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  const version = execFileSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
  return {
    port,
    password,
    pid: child.pid,
    dir,
    data,
    binDir,
    version,
    url: (db = 'postgres', user = 'postgres', pw = password) => `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${encodeURIComponent(db)}`,
    /** A clean shutdown (a checkpoint, nothing to recover): the data directory stays, e.g. to copy it. */
    async shutdown() {
      if (child.exitCode !== null) throw new Error(`postgres had exited already: ${logTail()}`);
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGINT'); // fast shutdown
      await Promise.race([exited, new Promise((r) => setTimeout(r, 120000))]);
      if (child.exitCode === null) throw new Error('postgres did not shut down within 2 minutes');
      if (child.exitCode !== 0) throw new Error(`postgres shut down with exit code ${child.exitCode}: ${logTail()}`);
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGQUIT'); // immediate shutdown
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
        if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
