/**
 * Finds pg_dump / pg_dumpall / psql binaries and their versions:
 * PGBACKUP_PG_BINDIR, `pg_config --bindir`, /usr/lib/postgresql/N/bin, /usr/pgsql-N/bin, PATH.
 */
import { execFile } from 'node:child_process';
import { readdir, access } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join, delimiter } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PgBinary {
  path: string;
  version: string; // "15.18"
  major: number;
  minor: number;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function versionOf(path: string): Promise<PgBinary | null> {
  try {
    const { stdout } = await run(path, ['--version'], { timeout: 10000 });
    const m = /(\d+)(?:\.(\d+))?/.exec(stdout.replace(/^[^)]*\)/, ''));
    if (!m) return null;
    const major = Number(m[1]);
    const minor = Number(m[2] ?? 0);
    return { path, version: `${major}.${minor}`, major, minor };
  } catch {
    return null;
  }
}

async function candidateDirs(env: NodeJS.ProcessEnv): Promise<string[]> {
  const dirs: string[] = [];
  if (env.PGBACKUP_PG_BINDIR) return [env.PGBACKUP_PG_BINDIR];
  try {
    const { stdout } = await run('pg_config', ['--bindir'], { timeout: 10000 });
    if (stdout.trim()) dirs.push(stdout.trim());
  } catch {
    /* no pg_config */
  }
  for (const base of ['/usr/lib/postgresql', '/usr/local/lib/postgresql']) {
    try {
      for (const v of await readdir(base)) dirs.push(join(base, v, 'bin'));
    } catch {
      /* none */
    }
  }
  try {
    for (const v of await readdir('/usr')) if (/^pgsql-\d+$/.test(v)) dirs.push(join('/usr', v, 'bin'));
  } catch {
    /* none */
  }
  for (const d of (env.PATH ?? '').split(delimiter)) if (d) dirs.push(d);
  return [...new Set(dirs)];
}

const cache = new Map<string, Promise<PgBinary[]>>();

/** Every distinct binary named `name` found, with its version (looked up once per run). */
export function findBinaries(name: string, env: NodeJS.ProcessEnv = process.env): Promise<PgBinary[]> {
  const k = `${name}\0${env.PGBACKUP_PG_BINDIR ?? ''}\0${env.PATH ?? ''}`;
  let p = cache.get(k);
  if (!p) {
    p = (async () => {
      const paths = [...new Set((await candidateDirs(env)).map((d) => join(d, name)))];
      const present = await Promise.all(paths.map(async (x) => ((await exists(x)) ? x : null)));
      const versions = await Promise.all(present.filter((x): x is string => x !== null).map(versionOf));
      // The same binary reached through several paths (symlinks) counts once.
      const seen = new Set<string>();
      return versions.filter((v): v is PgBinary => {
        if (!v || seen.has(v.version)) return false;
        seen.add(v.version);
        return true;
      });
    })();
    cache.set(k, p);
  }
  return p;
}

/**
 * The binary to use against a server of major `serverMajor`: the same major if there is one,
 * else the oldest newer one (its output is the most likely to load anywhere). null when none fits.
 */
export function pickBinary(found: PgBinary[], serverMajor: number): PgBinary | null {
  const fit = found.filter((b) => b.major >= serverMajor).sort((a, b) => a.major - b.major || b.minor - a.minor);
  return fit[0] ?? null;
}

/** psql learnt `\restrict` in 17.6, 16.10, 15.14, 14.19 and 13.22 (and every 18). */
export function psqlKnowsRestrict(b: { major: number; minor: number }): boolean {
  const min: Record<number, number> = { 13: 22, 14: 19, 15: 14, 16: 10, 17: 6 };
  if (b.major >= 18) return true;
  const m = min[b.major];
  return m !== undefined && b.minor >= m;
}
