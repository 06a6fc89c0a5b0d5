// PostgreSQL's own `regression` database (what `make installcheck-parallel` leaves behind, the
// database pg_upgrade's tests dump and restore) backed up and restored by pgbackup, to
// pg_upgrade's standard: pg_dump of the source and of the restored database are identical after
// the adjustments upstream's tests make, every table has the same rows and every large object
// the same bytes.
//
// The regression suite comes from the Debian source package of the installed server, built by
// test/support/regress-build.sh (.ci/run calls it and exports PGBACKUP_REGRESS_DIR). Without it
// this file fails, saying how to build it: it never skips.
//
// installcheck runs against a cluster of this file's own (same server binaries as the suite's),
// not the suite's shared one: the regression tests create and drop roles, databases and a
// tablespace and expect an otherwise idle cluster, and other files back up every database of
// the shared cluster (`--all-databases`) or its roles (`--globals`). Running it in this file's
// beforeAll lets the other worker go on with the other files meanwhile.
//
// The cluster installcheck leaves behind is cached (test/support/regress-db.mjs: keyed by the
// server and the built suite, its files' digest checked before each use; stale or damaged, it
// is made again): a later run, such as the second Node's in CI, starts on a copy of it instead
// of running installcheck again. Every backup, restore and comparison below runs each time.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync, chmodSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PG, run, tmp, newIdentity } from './helpers.js';
import { keepTempDirs } from '../support/tmp.js';
// @ts-expect-error plain JS test support
import { startCluster } from '../support/pg.mjs';
// @ts-expect-error plain JS test support
import { cacheKey, cachedDataDir, libDirFor, saveDataDir } from '../support/regress-db.mjs';

type Cluster = { port: number; password: string; pid: number; data: string; url: (db?: string) => string; shutdown: () => Promise<void>; stop: () => Promise<void>; version: string };

const SRC = 'regression';
const REGRESS_TIMEOUT = 20 * 60_000;

/** The built src/test/regress folder: PGBACKUP_REGRESS_DIR, else regress-build.sh's default cache. */
function regressDir(): string {
  const fromEnv = process.env.PGBACKUP_REGRESS_DIR;
  const dir = fromEnv || join(process.env.PGBACKUP_REGRESS_CACHE || join(homedir(), '.cache/pgbackup-regress'), 'regress');
  const how = 'Build it with `test/support/regress-build.sh` (as root on Debian: it adds a deb-src entry, installs build dependencies, fetches the source package of the installed server and builds src/test/regress), then set PGBACKUP_REGRESS_DIR to the folder it prints; .ci/run does both.';
  for (const f of ['pg_regress', 'regress.so', 'parallel_schedule']) {
    if (!existsSync(join(dir, f))) {
      throw new Error(`PostgreSQL's regression suite is not built: ${join(dir, f)} is missing${fromEnv ? ' (PGBACKUP_REGRESS_DIR)' : ''}. ${how}`);
    }
  }
  return realpathSync(dir);
}

function postgresIds(): { uid?: number; gid?: number } {
  if (!process.getuid || process.getuid() !== 0) return {};
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  };
}

let cluster: Cluster;
let work: string; // a copy of src/test/regress owned by the server's user, kept until the end
let dir: string;
let id: { file: string; recipient: string };
let regress: ChildProcess | undefined; // pg_regress while it runs

function dbUrl(db: string): string {
  return `postgres://postgres:${encodeURIComponent(cluster.password)}@127.0.0.1:${cluster.port}/${encodeURIComponent(db)}`;
}

function pgEnv(db: string): NodeJS.ProcessEnv {
  return { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: 'postgres', PGPASSWORD: cluster.password, PGDATABASE: db };
}

async function query<T = Record<string, unknown>>(db: string, text: string): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', password: cluster.password, database: db });
  await c.connect();
  try {
    return (await c.query(text)).rows as T[];
  } finally {
    await c.end();
  }
}

/**
 * Run pg_regress's parallel schedule against the cluster, as the server's user, in `work`; the
 * C functions it creates load their libraries from `dlpath` (stored in the database by path).
 */
function installcheck(dlpath: string): Promise<{ code: number | null; out: string }> {
  const { uid, gid } = postgresIds();
  const args = [
    `--dlpath=${dlpath}`,
    `--inputdir=${work}`,
    `--outputdir=${work}`,
    `--bindir=${PG().binDir}`,
    '--host=127.0.0.1',
    `--port=${cluster.port}`,
    '--user=postgres',
    `--schedule=${join(work, 'parallel_schedule')}`,
    ...SCHEDULE_ARGS,
  ];
  return new Promise((resolve, reject) => {
    const child = (regress = spawn(join(work, 'pg_regress'), args, {
      cwd: work,
      uid,
      gid,
      env: { PATH: process.env.PATH, HOME: work, LANG: 'C', PGPASSWORD: cluster.password },
      stdio: ['ignore', 'pipe', 'pipe'],
    }));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      regress = undefined;
      resolve({ code, out });
    });
  });
}

// A setup failure (no built suite, no usable database) is kept and thrown by each test, so that
// they count as failed, not skipped.
let setupError: Error | undefined;
beforeAll(async () => {
  try {
    await setUp();
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
}, REGRESS_TIMEOUT);

function ready(): void {
  if (setupError) throw setupError;
}

/** The pg_regress arguments that do not depend on the run (part of the cache key). */
const SCHEDULE_ARGS = ['--max-concurrent-tests=20'];

/**
 * Start a cluster on a copy of the cached installcheck cluster; undefined (having said why)
 * when there is no usable cache: none yet, stale (another server or regression build) or
 * damaged (files changed since it was saved, or the server does not start on it).
 */
async function fromCache(root: string, key: string): Promise<Cluster | undefined> {
  const c = cachedDataDir(root, key);
  if (!c.data) {
    console.log(`regression database cache: ${c.missing}`);
    return undefined;
  }
  try {
    return await startCluster({ binDir: PG().serverBinDir, data: c.data, password: c.meta.password });
  } catch (e) {
    console.warn(`regression database cache: the server does not start on it (${(e as Error).message.slice(0, 2000)}): removed`);
    rmSync(join(c.data, '..'), { recursive: true, force: true });
    return undefined;
  }
}

async function setUp(): Promise<void> {
  const source = regressDir();
  const t0 = Date.now();
  // regress.so and the expected outputs must be of the server's major.
  const major = (v: string) => /\(PostgreSQL\) (\d+)/.exec(v)?.[1];
  const serverVersion = execFileSync(join(PG().serverBinDir, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
  const regressVersion = execFileSync(join(source, 'pg_regress'), ['--version'], { encoding: 'utf8' }).trim();
  if (major(regressVersion) !== major(serverVersion)) {
    throw new Error(`${join(source, 'pg_regress')} is ${regressVersion}, the server is ${serverVersion}: rebuild with test/support/regress-build.sh (PGBACKUP_REGRESS_PACKAGE=postgresql-${major(serverVersion)} to choose the server package)`);
  }
  // The cluster installcheck leaves behind depends on the server and the regression suite only:
  // it is cached (next to the built suite) and copied for each run; PGBACKUP_REGRESS_DB_CACHE=0
  // runs installcheck afresh (and saves nothing).
  const useCache = process.env.PGBACKUP_REGRESS_DB_CACHE !== '0';
  const cacheRoot = join(process.env.PGBACKUP_REGRESS_CACHE || join(homedir(), '.cache/pgbackup-regress'), 'regression-db');
  const key = useCache ? cacheKey({ regressDir: source, serverBinDir: PG().serverBinDir, parts: SCHEDULE_ARGS }) : '';
  const dlpath = useCache ? libDirFor(source, key) : undefined;
  const cached = useCache ? await fromCache(cacheRoot, key) : undefined;
  if (cached) {
    cluster = cached;
    console.log(`regression database: the cached installcheck cluster, started in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  } else {
    cluster = await startCluster({ binDir: PG().serverBinDir });
    const { uid, gid } = postgresIds();
    // The server loads regress.so from here, reads the data files (server-side COPY FROM) and
    // writes results/ (COPY TO): the server's user must own the copy.
    const parent = tmp('pgbackup-regress-');
    work = join(parent, 'regress');
    cpSync(source, work, { recursive: true });
    if (uid !== undefined) execFileSync('chown', ['-R', `${uid}:${gid}`, parent]);
    chmodSync(parent, 0o755);
    const r = await installcheck(dlpath ?? work);
    const seconds = ((Date.now() - t0) / 1000).toFixed(0);
    const summary = r.out.split('\n').filter((l) => /FAILED|failed|passed/.test(l)).join('\n');
    // Upstream's pg_upgrade test requires a clean run. A failed regression test still leaves a
    // usable (if slightly different) database, and it is PostgreSQL's to fix, not ours: say so
    // loudly, then go on (without caching it). The database must exist and be populated
    // (checked below).
    if (r.code !== 0) {
      const diffs = join(work, 'regression.diffs');
      const head = existsSync(diffs) ? readFileSync(diffs, 'utf8').split('\n').slice(0, 80).join('\n') : '';
      console.warn(`installcheck-parallel exited ${r.code} after ${seconds}s:\n${summary || r.out.slice(-4000)}\n${head}`);
    } else {
      console.log(`installcheck-parallel passed in ${seconds}s`);
    }
    await checkRegressionDatabase(r.out);
    if (useCache && r.code === 0) {
      // Saved from a clean shutdown, then this run goes on with a copy, as later runs do.
      await cluster.shutdown();
      saveDataDir(cacheRoot, key, cluster.data, { password: cluster.password, server: serverVersion, regress: regressVersion });
      await cluster.stop();
      const again = await fromCache(cacheRoot, key);
      if (!again) throw new Error(`the regression database cache just saved in ${cacheRoot} is not usable (above)`);
      cluster = again;
    }
  }
  await checkRegressionDatabase();
  dir = tmp('pgbackup-regress-test-');
  id = await newIdentity(dir);
}

/** The regression database exists and holds its hundreds of tables. */
async function checkRegressionDatabase(regressOutput = ''): Promise<void> {
  const said = regressOutput ? `; pg_regress said:\n${regressOutput.slice(-4000)}` : ' (the cached installcheck cluster)';
  const tables = await query<{ n: number }>(SRC, `SELECT count(*)::int AS n FROM pg_class WHERE relkind = 'r' AND relnamespace <> 'pg_catalog'::regnamespace AND relnamespace <> 'information_schema'::regnamespace`).catch((e: Error) => {
    throw new Error(`no usable "${SRC}" database (${e.message})${said}`);
  });
  if (tables[0]!.n < 100) throw new Error(`the "${SRC}" database has only ${tables[0]!.n} tables${said}`);
}

afterAll(async () => {
  if (regress?.pid) process.kill(regress.pid, 'SIGTERM'); // a timed-out beforeAll
  await cluster?.stop();
  // PGBACKUP_KEEP_REGRESS=1 keeps the dumps (and the regress tree) to look at after a failure;
  // otherwise they go with the file's other temporary folders (test/support/tmp.ts).
  if (process.env.PGBACKUP_KEEP_REGRESS) keepTempDirs();
});

// ---------------------------------------------------------------------------------------------
// Comparing two databases the way upstream does.

function pgDumpSupports(flag: string): boolean {
  return execFileSync(join(PG().binDir, 'pg_dump'), ['--help'], { encoding: 'utf8' }).includes(flag);
}

/** Plain pg_dump of a database into a file; returns the file. */
function dumpToFile(db: string, file: string): string {
  // pg_dump since 17.6/16.10/15.14 writes `\restrict KEY` ... `\unrestrict KEY` with a random
  // key; upstream's tests pass a fixed one so that two dumps compare equal.
  const restrict = pgDumpSupports('--restrict-key') ? ['--restrict-key=test'] : [];
  execFileSync(join(PG().binDir, 'pg_dump'), ['--no-sync', ...restrict, '-f', file], { env: pgEnv(db), stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  return file;
}

/**
 * The adjustments made before comparing the two dumps are upstream's for this comparison:
 * src/bin/pg_upgrade/t/002_pg_upgrade.pl compares pg_dumpall before and after an upgrade with
 * PostgreSQL::Test::AdjustUpgrade's adjust_old_dumpfile/adjust_new_dumpfile (for the same major
 * these only drop the version comment and blank lines), and the dump/restore round trip of the
 * regression database that PostgreSQL 18 added to the same test uses
 * PostgreSQL::Test::AdjustDump's adjust_regress_dumpfile (children's column order). Each is
 * inherent to pg_dump, not to the tool that stores and replays its output:
 *
 * 1. Blank lines are dropped (upstream: "some places in pg_dump emit more or fewer"). They
 *    carry nothing; psql ignores them.
 * 2. Windows newlines become Unix ones (pg_dump on Windows; a no-op here, kept as upstream has it).
 * 3. The `\restrict KEY` / `\unrestrict KEY` lines of pg_dump 15.14 and later carry a random
 *    key; both dumps are taken with a fixed --restrict-key, as upstream's tests do.
 *    ("-- Dumped from database version" needs nothing: one server holds both databases.)
 * 4. Inheritance children's column order, in the source's dump only. Some regression tests give
 *    a child its columns in another order than its parents' (a column added to a parent after
 *    the child existed lands at the child's end; a table made first and attached with
 *    INHERIT keeps its own order). A plain dump can only say `CREATE TABLE child (local
 *    columns) INHERITS (parents)`, and the server puts the parents' columns first
 *    (MergeAttributes); only --binary-upgrade keeps attribute numbers. So the restored child
 *    has another column order, which shows in its CREATE TABLE and in its COPY header and
 *    rows. Upstream rewrites the CREATE TABLE of a fixed list of children in the original's
 *    dump and deletes the COPY blocks of the affected tables. Here the order the restore will
 *    give every table is computed from the source's catalog (restoredColumnOrder), and the
 *    source's dump is rewritten to it only for the tables where it differs: their CREATE
 *    TABLE column lines, and their COPY header and every row's fields. The restored side's
 *    dump is left as it is, so a wrong prediction shows as a difference, no COPY data is left
 *    out of the comparison, and every other table must match byte for byte.
 */
function adjustDump(text: string, reorder: Map<string, string[]> = new Map()): string {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const create = /^CREATE (?:UNLOGGED |FOREIGN )?TABLE (\S+) \($/.exec(line);
    const createOrder = create && reorder.get(create[1]!);
    if (createOrder) {
      // Column lines (`    name type ...`), then constraint lines, up to the closing `)`.
      const columns: string[] = [];
      const constraints: string[] = [];
      let j = i + 1;
      for (; j < lines.length && !lines[j]!.startsWith(')'); j++) {
        const l = lines[j]!.replace(/,$/, '');
        (/^ {4}CONSTRAINT /.test(l) ? constraints : columns).push(l);
      }
      const pos = (l: string) => createOrder.indexOf(firstIdentifier(l.trim()));
      if (columns.some((l) => pos(l) < 0)) throw new Error(`adjustDump: a column of ${create[1]} is not in ${createOrder.join(', ')}:\n${columns.join('\n')}`);
      columns.sort((x, y) => pos(x) - pos(y));
      const body = [...columns, ...constraints];
      out.push(line, ...body.map((l, k) => (k < body.length - 1 ? `${l},` : l)));
      i = j - 1;
      continue;
    }
    const copy = /^COPY (\S+) \((.*)\) FROM stdin;$/.exec(line);
    const copyOrder = copy && reorder.get(copy[1]!);
    if (copyOrder) {
      // COPY lists the stored columns (no generated ones); put them in the restored order.
      const cols = splitColumns(copy[2]!);
      if (cols.some((c) => !copyOrder.includes(c))) throw new Error(`adjustDump: COPY ${copy[1]} has columns not in ${copyOrder.join(', ')}`);
      const perm = cols.map((_, k) => k).sort((x, y) => copyOrder.indexOf(cols[x]!) - copyOrder.indexOf(cols[y]!));
      out.push(`COPY ${copy[1]} (${perm.map((k) => cols[k]).join(', ')}) FROM stdin;`);
      let j = i + 1;
      for (; j < lines.length && lines[j] !== '\\.'; j++) {
        const fields = lines[j]!.split('\t'); // text format: a tab inside a value is written \t
        out.push(perm.map((k) => fields[k]).join('\t'));
      }
      out.push('\\.');
      i = j;
      continue;
    }
    out.push(line);
  }
  return out.join('\n').replace(/\n\n+/g, '\n');
}

/** The leading identifier of `name type ...` or `"quoted ""name""" type ...`, as written. */
function firstIdentifier(s: string): string {
  if (!s.startsWith('"')) return s.split(/\s/)[0]!;
  let k = 1;
  for (;;) {
    const q = s.indexOf('"', k);
    if (q < 0) return s;
    if (s[q + 1] === '"') k = q + 2;
    else return s.slice(0, q + 1);
  }
}

/** `a, "b c", "d""e"` -> [a, "b c", "d""e"] (quoted identifiers kept as written). */
function splitColumns(list: string): string[] {
  const cols: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of list) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      cols.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) cols.push(cur.trim());
  return cols;
}

/**
 * For each table whose columns a plain dump and restore will reorder: its name as pg_dump
 * writes it, and its columns (quoted as pg_dump quotes them) in the order the restore gives.
 * The restore creates a child as `CREATE TABLE child (its local columns in attnum order)
 * INHERITS (parents in inhseqno order)`: the parents' columns come first, each parent's in
 * its own restored order, a name seen before merged into its first place; then the local
 * columns no parent has. Partitions keep their order (pg_dump creates them with their full
 * column list and attaches them), and so do tables without parents.
 */
async function restoredColumnOrder(db: string): Promise<Map<string, string[]>> {
  const rels = await query<{ oid: string; name: string; partition: boolean; cols: Array<{ n: string; local: boolean }>; parents: string[] }>(
    db,
    `SELECT c.oid::text AS oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, c.relispartition AS partition,
            (SELECT coalesce(json_agg(json_build_object('n', quote_ident(a.attname), 'local', a.attislocal) ORDER BY a.attnum), '[]')
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS cols,
            (SELECT coalesce(json_agg(i.inhparent::text ORDER BY i.inhseqno), '[]') FROM pg_inherits i WHERE i.inhrelid = c.oid) AS parents
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid IN (SELECT inhrelid FROM pg_inherits UNION SELECT inhparent FROM pg_inherits)`,
  );
  const byOid = new Map(rels.map((r) => [r.oid, r]));
  const memo = new Map<string, string[]>();
  const order = (oid: string): string[] => {
    const known = memo.get(oid);
    if (known) return known;
    const r = byOid.get(oid)!;
    let result = r.cols.map((c) => c.n);
    if (!r.partition && r.parents.length > 0) {
      const merged: string[] = [];
      for (const p of r.parents) for (const c of order(p)) if (!merged.includes(c)) merged.push(c);
      for (const c of r.cols) if (c.local && !merged.includes(c.n)) merged.push(c.n);
      result = merged;
    }
    memo.set(oid, result);
    return result;
  };
  const changed = new Map<string, string[]>();
  for (const r of rels) {
    const now = r.cols.map((c) => c.n);
    const after = order(r.oid);
    if (after.join('\0') !== now.join('\0')) changed.set(r.name, after);
  }
  return changed;
}

/** `diff -u` of two files, at most `max` lines; '' when equal. */
function unifiedDiff(a: string, b: string, max = 200): string {
  try {
    execFileSync('diff', ['-u', a, b], { encoding: 'utf8', maxBuffer: 1 << 28 });
    return '';
  } catch (e) {
    const err = e as { status?: number; stdout?: string; message: string };
    if (err.status !== 1) throw new Error(`diff failed: ${err.message}`, { cause: e });
    const lines = String(err.stdout).split('\n');
    return lines.slice(0, max).join('\n') + (lines.length > max ? `\n... (${lines.length - max} more diff lines)` : '');
  }
}

/** Dump both databases, adjust, and return the diff ('' when identical). */
/** Each COPY block's rows in sorted order (for loads whose row order may differ). */
function sortCopyRows(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    out.push(lines[i]!);
    if (/^COPY .* FROM stdin;$/.test(lines[i]!)) {
      const rows: string[] = [];
      while (i + 1 < lines.length && lines[i + 1] !== '\\.') rows.push(lines[++i]!);
      for (const r of rows.sort()) out.push(r);
    }
  }
  return out.join('\n');
}

async function compareDumps(source: string, target: string, label: string, sortRows = false): Promise<string> {
  const reorder = await restoredColumnOrder(source);
  if (process.env.PGBACKUP_KEEP_REGRESS) console.log(`${label}: column order adjusted for ${[...reorder.keys()].join(', ')}`);
  const a = dumpToFile(source, join(dir, `${label}-source.sql`));
  const b = dumpToFile(target, join(dir, `${label}-target.sql`));
  const sorted = (t: string) => (sortRows ? sortCopyRows(t) : t);
  writeFileSync(`${a}.adjusted`, sorted(adjustDump(readFileSync(a, 'utf8'), reorder)));
  writeFileSync(`${b}.adjusted`, sorted(adjustDump(readFileSync(b, 'utf8'))));
  return unifiedDiff(`${a}.adjusted`, `${b}.adjusted`);
}

/** Row count of every table and populated materialized view (ONLY: each table its own rows). */
async function rowCounts(db: string): Promise<Record<string, number>> {
  const c = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', password: cluster.password, database: db });
  await c.connect();
  try {
    const rels = (
      await c.query<{ name: string }>(
        `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated))
            AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
            AND c.relpersistence <> 't'
          ORDER BY 1`,
      )
    ).rows;
    const out: Record<string, number> = {};
    for (const { name } of rels) out[name] = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${name}`)).rows[0]!.n);
    return out;
  } finally {
    await c.end();
  }
}

/** Every large object: oid, owner, ACL and md5 of its data. */
async function largeObjects(db: string): Promise<Array<Record<string, unknown>>> {
  return query(
    db,
    `SELECT m.oid::bigint AS oid, pg_get_userbyid(m.lomowner) AS owner, m.lomacl::text AS acl,
            md5(lo_get(m.oid)) AS md5, length(lo_get(m.oid)) AS bytes,
            obj_description(m.oid, 'pg_largeobject') AS comment
       FROM pg_largeobject_metadata m ORDER BY m.oid`,
  );
}

async function expectSameDatabase(source: string, target: string, label: string, sortRows = false): Promise<void> {
  const diff = await compareDumps(source, target, label, sortRows);
  expect(diff, `pg_dump of "${source}" and of "${target}" differ after upstream's adjustments (first lines of diff -u; dumps in ${dir}):\n${diff}`).toBe('');
  expect(await rowCounts(target)).toEqual(await rowCounts(source));
  const los = await largeObjects(source);
  expect(los.length, 'the regression database holds at least one large object').toBeGreaterThan(0);
  expect(await largeObjects(target)).toEqual(los);
}

async function recreate(db: string): Promise<void> {
  await query('postgres', `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
}

let stored: { store: string; key: string } | undefined;

/** The pgbackup backup of the regression database (made once, by whichever test needs it first). */
async function backupOnce(): Promise<{ store: string; key: string }> {
  if (stored) return stored;
  const store = join(dir, 'store');
  const b = await run(['backup', '--database', dbUrl(SRC), '--to', store, '--recipient', id.recipient]);
  expect(b.code, `backup failed:\n${b.stderr}`).toBe(0);
  stored = { store, key: b.stdout.trim() };
  return stored;
}

describe("PostgreSQL's regression database", () => {
  it('baseline: plain `pg_dump | psql -1` restores it into a fresh database, identical after the adjustments', async () => {
    // The fixture itself restores with PostgreSQL's own tools, so a failure below is pgbackup's.
    ready();
    const db = 'regression_plain';
    await recreate(db);
    await query('postgres', `CREATE DATABASE ${db} TEMPLATE template0`);
    const file = join(dir, 'baseline.sql');
    execFileSync(join(PG().binDir, 'pg_dump'), ['--no-sync', '-f', file], { env: pgEnv(SRC), stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      execFileSync(join(PG().binDir, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-f', file], { env: pgEnv(db), stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
    } catch (e) {
      throw new Error(`pg_dump | psql -1 of the regression database failed: ${String((e as { stderr?: Buffer }).stderr ?? e)}`, { cause: e });
    }
    await expectSameDatabase(SRC, db, 'baseline');
  });

  it('pgbackup backup, then restore --create: identical to pg_upgrade\'s standard, same rows and large objects', async () => {
    ready();
    const { store, key } = await backupOnce();
    const target = 'regression_restored';
    await recreate(target);
    const r = await run(['restore', key, '--from', store, '--to', dbUrl(target), '--create', '--identity', id.file]);
    expect(r.code, `restore --create failed:\n${r.stderr.split('\n').slice(-40).join('\n')}`).toBe(0);
    await expectSameDatabase(SRC, target, 'pgbackup');
  });

  it('restore --jobs 3 --create: the same database as the serial restore', async () => {
    ready();
    await backupOnce();
    const target = 'regression_parallel';
    await recreate(target);
    const r = await run(['restore', stored!.key, '--from', stored!.store, '--to', dbUrl(target), '--create', '--jobs', '3', '--identity', id.file]);
    expect(r.code, `restore --jobs 3 failed:\n${r.stderr.split('\n').slice(-40).join('\n')}`).toBe(0);
    // Chunks of one table load concurrently, so rows may lie in another physical order (which
    // pg_dump follows): rows are compared sorted within each COPY block for this one.
    await expectSameDatabase(SRC, target, 'parallel', true);
  });

  it('restore --list names the same entries as pg_restore -l of a custom-format dump', async () => {
    ready();
    await backupOnce();
    const r = await run(['restore', stored!.key, '--from', stored!.store, '--list', '--json', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout) as { complete: boolean; entries: Array<{ type: string; schema: string | null; name: string; owner: string | null; rows?: number }> };
    expect(listed.complete).toBe(true);
    const ours = new Set(listed.entries.map((e) => `${e.type} ${e.schema ?? '-'} ${e.name} ${e.owner ?? '-'}`));
    const custom = join(dir, 'regression.dump');
    execFileSync(join(PG().binDir, 'pg_dump'), ['--format=custom', '-f', custom], { env: pgEnv(SRC), stdio: ['ignore', 'ignore', 'pipe'] });
    const toc = execFileSync(join(PG().binDir, 'pg_restore'), ['-l', custom], { maxBuffer: 1 << 26 }).toString('utf8');
    // "dumpId; tableoid oid TYPE SCHEMA NAME OWNER"; pg_dump's plain header sanitises newlines in names the same way.
    const theirs = new Set(
      toc
        .split('\n')
        .filter((l) => /^\d+; \d+ \d+ /.test(l))
        .map((l) => l.replace(/^\d+; \d+ \d+ /, ''))
        // An empty owner (casts, transforms, access methods, BLOBS) is "-" in the plain header.
        .map((l) => (l.endsWith(' ') ? `${l}-` : l))
        // ENCODING, STDSTRINGS, SEARCHPATH and DATABASE entries have no header in a plain dump.
        .filter((l) => !/^(ENCODING|STDSTRINGS|SEARCHPATH|DATABASE|DATABASE PROPERTIES) /.test(l)),
    );
    expect([...ours].filter((x) => !theirs.has(x)), 'entries --list shows that pg_restore -l does not').toEqual([]);
    expect([...theirs].filter((x) => !ours.has(x)), 'entries pg_restore -l shows that --list does not').toEqual([]);
    const tenk = listed.entries.find((e) => e.type === 'TABLE DATA' && e.name === 'tenk1');
    expect(tenk?.rows).toBe(10000);
  });

  it('restore --table of some of its tables into a new database: each as pg_dump -t of the source shows it, nothing else', async () => {
    ready();
    await backupOnce();
    const target = 'regression_selective';
    await recreate(target);
    const tables = ['public.tenk1', 'public.onek', 'public.road'];
    const r = await run(['restore', stored!.key, '--from', stored!.store, '--to', dbUrl(target), '--create', '--json', ...tables.flatMap((t) => ['--table', t]), '--identity', id.file]);
    expect(r.code, `restore --table failed:\n${r.stderr.split('\n').slice(-40).join('\n')}`).toBe(0);
    expect(JSON.parse(r.stdout).tableNames).toEqual([...tables].sort());
    const dumpT = (db: string, t: string) =>
      execFileSync(join(PG().binDir, 'pg_dump'), ['-t', t, db], { env: pgEnv(db), maxBuffer: 1 << 26 })
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('--') && !/^\\(un)?restrict /.test(l))
        .join('\n');
    for (const t of tables) expect(dumpT(target, t), t).toBe(dumpT(SRC, t));
    const rels = await query(target, `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema')`);
    expect((rels[0] as { n: number }).n).toBe(tables.length);
  });
});
