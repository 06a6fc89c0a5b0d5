/**
 * The tool as users install it (issue 16): `npm pack` of a copy of the checkout (prepack builds
 * dist/ and the man page into the tarball), the tarball installed into an empty prefix without
 * dev dependencies, and the installed `pgbackup` (on PATH, under the Node that runs this test)
 * running --version, a backup into the default ./backups folder, and a restore from it.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ROOT, PG, baseEnv, url, tmp, createDb, dropDb, snapshot, newIdentity, type RunResult } from './helpers.js';

const SRC_DB = 'pkg_src';
const DST_DB = 'pkg_dst';
const nodeDir = dirname(process.execPath);

let work: string;
let prefix: string;
let tarball: string;
let bin: string;

function npm(args: string[], cwd: string): string {
  // npm runs under the same Node as this test, from PATH (the Node that CI chose comes first).
  return execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${nodeDir}:${process.env.PATH}`, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
}

function runInstalled(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = spawn(bin, args, { cwd, env: { ...env, PATH: `${join(prefix, 'bin')}:${nodeDir}:${env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
}

beforeAll(async () => {
  work = tmp('pgbackup-package-');
  // A copy of what a checkout holds (not dist/, not node_modules/: the dev dependencies are
  // linked in, as `npm ci` would have installed them), so that prepack builds from source here
  // and never touches the dist/ the other tests run from.
  const copy = join(work, 'checkout');
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'src', 'bin', 'scripts', 'docs']) {
    if (existsSync(join(ROOT, f))) cpSync(join(ROOT, f), join(copy, f), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  const out = npm(['pack', '--json', '--pack-destination', work], copy);
  const packed = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(work, packed[0]!.filename.replace(/^@.*\//, ''));
  expect(existsSync(tarball)).toBe(true);
  const files = packed[0]!.files.map((f) => f.path);
  expect(files).toContain('dist/main.js');
  expect(files).toContain('dist/bundle/main.js');
  expect(files).toContain('dist/pgbackup.1');
  expect(files).toContain('bin/pgbackup');
  expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('node_modules/'))).toEqual([]);

  prefix = join(work, 'prefix');
  npm(['install', '--global', '--prefix', prefix, '--omit=dev', tarball], work);
  bin = join(prefix, 'bin', 'pgbackup');
  await createDb(SRC_DB, 'rich.sql');
}, 600_000);

describe('the packed tool, installed without dev dependencies', () => {
  it('has no test tooling and installs its man page', () => {
    const mods = readdirSync(join(prefix, 'lib', 'node_modules', 'pgbackup', 'node_modules'));
    for (const dev of ['typescript', 'esbuild', 'vitest', 'vite', 's3rver', 'pg14', 'pg17', 'yaml']) expect(mods).not.toContain(dev);
    expect(existsSync(join(prefix, 'share', 'man', 'man1', 'pgbackup.1'))).toBe(true);
  });

  it('runs --version, a backup into the default folder and a restore from it', async () => {
    const home = join(work, 'job');
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const env = baseEnv({ PGBACKUP_TARGET: undefined });

    const v = await runInstalled(['--version'], work, env);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(`pgbackup ${version}`);

    const id = await newIdentity(work);
    mkdirSync(home);
    const b = await runInstalled(['backup', '--database', url(SRC_DB), '--recipient', id.recipient], home, env);
    expect(b.stderr).not.toContain(PG().password);
    expect(b.code, b.stderr).toBe(0);
    const key = b.stdout.trim().split('\n').pop()!;
    expect(key).toMatch(new RegExp(`^${SRC_DB}/\\d{4}/\\d{2}/\\d{2}/${SRC_DB}_\\d{8}T\\d{6}Z\\.sql\\.gz\\.age$`));
    const folder = resolve(home, 'backups');
    expect(existsSync(join(folder, key))).toBe(true);
    expect(existsSync(join(folder, `${key}.json`))).toBe(true);
    expect(b.stderr).toContain(`default folder ${folder}`);

    await dropDb(DST_DB);
    const r = await runInstalled(['restore', key, '--to', url(DST_DB), '--create', '--identity', id.file], home, env);
    expect(r.code, r.stderr).toBe(0);
    expect(await snapshot(DST_DB)).toEqual(await snapshot(SRC_DB));
  });
});

describe('the Dockerfile\'s build stage', () => {
  it('builds with its own npm commands, run in a copy of the checkout, and leaves no dev dependency', () => {
    // Docker does not run here: the build stage's WORKDIR/COPY/RUN lines are read from the
    // Dockerfile and carried out in a temporary folder, so the test follows the Dockerfile.
    const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ').split('\n');
    const from = lines.findIndex((l) => /^FROM .* AS build$/i.test(l.trim()));
    expect(from).toBeGreaterThanOrEqual(0);
    const stage: string[] = [];
    for (const l of lines.slice(from + 1)) {
      if (/^FROM /i.test(l)) break;
      if (l.trim() && !l.trim().startsWith('#')) stage.push(l.trim());
    }
    const ctx = join(tmp('pgbackup-docker-'), 'root');
    let wd = ctx;
    const ran: string[] = [];
    for (const l of stage) {
      const [op, ...args] = l.split(/\s+/);
      if (op === 'WORKDIR') {
        wd = join(ctx, args[0]!);
        mkdirSync(wd, { recursive: true });
      } else if (op === 'COPY') {
        const to = args[args.length - 1]!;
        const dest = resolve(wd, to);
        for (const src of args.slice(0, -1)) cpSync(join(ROOT, src), to.endsWith('/') || args.length > 2 ? join(dest, src) : dest, { recursive: true });
      } else if (op === 'RUN') {
        const cmd = l.slice(4);
        ran.push(cmd);
        execFileSync('sh', ['-c', cmd], { cwd: wd, env: { ...process.env, PATH: `${nodeDir}:${process.env.PATH}`, npm_config_update_notifier: 'false' }, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
      } else throw new Error(`the test does not know the build stage's instruction: ${l}`);
    }
    expect(ran.some((c) => c.startsWith('npm ci'))).toBe(true);
    expect(ran.some((c) => c.startsWith('npm run build'))).toBe(true);
    expect(ran.some((c) => c.startsWith('npm prune --omit=dev'))).toBe(true);
    const mods = readdirSync(join(wd, 'node_modules'));
    for (const dev of ['typescript', 'esbuild', 'vitest', 's3rver', 'pg14', 'pg17']) expect(mods).not.toContain(dev);
    expect(existsSync(join(wd, 'dist', 'pgbackup.1'))).toBe(true);
    const v = execFileSync(process.execPath, [join(wd, 'bin', 'pgbackup'), '--version'], { encoding: 'utf8' });
    expect(v.trim()).toMatch(/^pgbackup \d+\.\d+\.\d+/);
  }, 600_000);
});
