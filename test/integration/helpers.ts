import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inject } from 'vitest';
import { tempDir } from '../support/tmp.js';
import pg from 'pg';
import { S3Client, ListObjectsV2Command, GetObjectCommand, PutObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { port: number; password: string; binDir: string; serverBinDir: string; version: string; pid: number };
    s3: { endpoint: string; env: Record<string, string>; dir: string; port: number };
    /** Ceph RGW from test/support/rgw.mjs: a real S3 implementation (lifecycle, multipart listing, conditional writes). */
    rgw: { endpoint: string; env: Record<string, string>; accessKey: string; secretKey: string; conf: string; lcDayS: number; startMs: number };
  }
}

export const ROOT = resolve(__dirname, '../..');
export const BIN = join(ROOT, 'bin/pgbackup');

export const PG = () => inject('pg');
export const S3 = () => inject('s3');
export const RGW = () => inject('rgw');

export function url(db: string, password = PG().password, user = 'postgres'): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${PG().port}/${encodeURIComponent(db)}`;
}

/** A temporary folder, removed when the test file is done (test/support/tmp.ts). */
export function tmp(name = 'pgbackup-test-'): string {
  return tempDir(name);
}

/** A clean environment for the CLI: nothing from the developer's shell leaks in. */
export function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', PGBACKUP_PG_BINDIR: PG().binDir, ...S3().env };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function run(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; onSpawn?: (pid: number) => void; onStderr?: (s: string) => void } = {}): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: opts.env ?? baseEnv(), cwd: opts.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d) => (stdout += d));
    // onStderr gets whole lines: a chunk boundary inside a log line (common on a loaded machine)
    // must not hide the line a test waits for.
    child.stderr.on('data', (d) => {
      stderr += d;
      const lines = (partial + String(d)).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) opts.onStderr?.(l + '\n');
    });
    child.on('error', rej);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
    opts.onSpawn?.(child.pid!);
    child.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
}

export async function sql<T = Record<string, unknown>>(db: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port: PG().port, user: 'postgres', password: PG().password, database: db });
  await c.connect();
  try {
    const r = await c.query(text, params);
    return r.rows as T[];
  } finally {
    await c.end();
  }
}

export async function createDb(name: string, fixture?: string): Promise<void> {
  await sql('postgres', `DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  await sql('postgres', `CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  if (fixture) psqlFile(name, join(ROOT, 'test/fixtures', fixture));
}

export async function dropDb(name: string): Promise<void> {
  await sql('postgres', `DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
}

export function psqlEnv(db: string): NodeJS.ProcessEnv {
  return { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(PG().port), PGUSER: 'postgres', PGPASSWORD: PG().password, PGDATABASE: db };
}

export function psqlFile(db: string, file: string): void {
  execFileSync(join(PG().binDir, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-f', file], { env: psqlEnv(db), stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Every user table's rows, as text, in a stable order: two databases are equal when these are. */
export async function snapshot(db: string): Promise<Record<string, string[]>> {
  const tables = await sql<{ s: string; t: string }>(
    db,
    `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2`,
  );
  const out: Record<string, string[]> = {};
  for (const { s, t } of tables) {
    const q = (x: string) => `"${x.replace(/"/g, '""')}"`;
    const rows = await sql<{ r: string }>(db, `SELECT x::text AS r FROM ${q(s)}.${q(t)} x`);
    out[`${s}.${t}`] = rows.map((r) => r.r).sort();
  }
  const views = await sql<{ v: string }>(db, `SELECT schemaname || '.' || viewname AS v FROM pg_views WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1`);
  out['<views>'] = views.map((v) => v.v);
  return out;
}

export function s3client(): S3Client {
  return new S3Client({
    endpoint: S3().endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** An SDK client for the suite's RGW (path-style, the user the harness created). */
export function rgwClient(): S3Client {
  return new S3Client({
    endpoint: RGW().endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: RGW().accessKey, secretAccessKey: RGW().secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The CLI's environment against RGW instead of s3rver. */
export function rgwEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return baseEnv({ ...RGW().env, ...extra });
}

/** radosgw-admin on the suite's RGW cluster (e.g. ['lc', 'process']); its stdout. */
export function rgwAdmin(args: string[]): string {
  return execFileSync('radosgw-admin', ['-c', RGW().conf, ...args], { encoding: 'utf8', timeout: 120_000 });
}

let bucketCounter = 0;
/** A new empty bucket on RGW, its name unique in the run (tests that set bucket-wide things need their own). */
export async function rgwBucket(tag: string): Promise<string> {
  const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const name = `${tag}-${process.pid}-${++bucketCounter}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63);
  const c = rgwClient();
  try {
    await c.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    c.destroy();
  }
  return name;
}

export async function s3keys(bucket: string, prefix: string): Promise<string[]> {
  const r = await s3client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

export async function s3get(bucket: string, key: string): Promise<Buffer> {
  const r = await s3client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

export async function s3put(bucket: string, key: string, body: Buffer): Promise<void> {
  await s3client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export async function s3del(bucket: string, key: string): Promise<void> {
  await s3client().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

let keyCounter = 0;
/** A fresh identity file and its recipient, made with our own keygen. */
export async function newIdentity(dir: string, pq = false): Promise<{ file: string; recipient: string }> {
  const file = join(dir, `id${++keyCounter}${pq ? '-pq' : ''}.txt`);
  const r = await run(['keygen', ...(pq ? ['--pq'] : []), '-o', file]);
  if (r.code !== 0) throw new Error(`keygen failed: ${r.stderr}`);
  return { file, recipient: r.stdout.trim() };
}

/**
 * A tool the tests need (the reference `age` CLI, `script` for a terminal): missing, the test
 * fails saying what to install; it never skips silently. `.ci/run` installs them.
 */
export function needCommand(cmd: string, pkg = cmd): void {
  if (!hasCommand(cmd)) throw new Error(`this test needs "${cmd}": install the ${pkg} package (.ci/run installs it)`);
}

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A folder of fake PostgreSQL client binaries that wrap the real ones (to see args, or to fail). */
export function fakeBinDir(scripts: Record<string, string>): string {
  const dir = tmp('pgbackup-bin-');
  const real = PG().binDir;
  for (const name of ['pg_dump', 'pg_dumpall', 'psql']) {
    const body = scripts[name] ?? `exec "${real}/${name}" "$@"`;
    const f = join(dir, name);
    writeFileSync(f, `#!/bin/sh\nREAL="${real}"\nif [ "$1" = "--version" ]; then ${scripts[`${name}:version`] ?? `exec "$REAL/${name}" --version`}; fi\n${body}\n`);
    chmodSync(f, 0o755);
  }
  return dir;
}

export function readText(p: string): string {
  return readFileSync(p, 'utf8');
}

/** Keys of all files under a folder (relative, sorted), including hidden partial files. */
export function filesUnder(dir: string): string[] {
  try {
    return execFileSync('find', [dir, '-type', 'f'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((p) => p.slice(dir.length + 1))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Run the CLI on a pseudo-terminal (`script`), typing `input` once the [y/N] question (or what
 * `o.when` matches) is on screen. `o.pipe` is a shell command the CLI's stdout is piped into
 * (stderr stays on the terminal).
 */
export function onTty(cmd: string[], input: string, env: NodeJS.ProcessEnv, o: { when?: RegExp; pipe?: string } = {}): Promise<{ code: number | null; out: string }> {
  const when = o.when ?? /\[y\/N\]/;
  const line = [process.execPath, BIN, ...cmd].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ') + (o.pipe ? ` | ${o.pipe}` : '');
  return new Promise((res) => {
    const child = spawn('script', ['-qec', line, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    // Answer once the question is on screen.
    const t = setInterval(() => {
      if (input && when.test(out)) {
        child.stdin.write(input);
        input = '';
      }
    }, 50);
    child.on('close', (code) => {
      clearInterval(t);
      res({ code, out });
    });
  });
}
