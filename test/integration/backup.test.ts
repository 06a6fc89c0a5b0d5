import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, execSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Decrypter } from 'age-encryption';
// @ts-expect-error plain JS test support
import { startCluster } from '../support/pg.mjs';
import {
  PG, run, baseEnv, url, tmp, createDb, dropDb, snapshot, psqlEnv, s3keys, s3get, newIdentity, needCommand, fakeBinDir, filesUnder, sql,
} from './helpers.js';

const DB = 'bk_rich';
let dir: string;
let id: { file: string; recipient: string };

beforeAll(async () => {
  dir = tmp();
  id = await newIdentity(dir);
  await createDb(DB, 'rich.sql');
});

function keyLine(stdout: string): string {
  const lines = stdout.trim().split('\n');
  return lines[lines.length - 1]!;
}

function decrypt(bytes: Buffer, identityFile: string): Promise<Buffer> {
  // The reference CLI, always: the point is that standard tools read our backups.
  needCommand('age');
  return Promise.resolve(execFileSync('age', ['-d', '-i', identityFile], { input: bytes, maxBuffer: 1 << 30 }));
}

async function restorePlain(sqlText: Buffer, db: string): Promise<void> {
  await createDb(db);
  execFileSync(join(PG().binDir, 'psql'), ['-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { input: sqlText, env: psqlEnv(db), stdio: ['pipe', 'ignore', 'pipe'] });
}

describe('backup', () => {
  it('backs up to S3; the object restores with age -d | gunzip | psql -1 into identical tables', async () => {
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/rt/', '--recipient', id.recipient]);
    expect(r.stderr).not.toContain(PG().password);
    expect(r.code, r.stderr).toBe(0);
    const key = keyLine(r.stdout);
    expect(key).toMatch(/^rt\/bk_rich\/\d{4}\/\d{2}\/\d{2}\/bk_rich_\d{8}T\d{6}Z\.sql\.gz\.age$/);
    const keys = await s3keys('backups', 'rt/bk_rich/');
    expect(keys).toEqual([key, `${key}.json`]);
    const stored = await s3get('backups', key);
    const manifest = JSON.parse((await s3get('backups', `${key}.json`)).toString());
    expect(manifest).toMatchObject({
      format: 1,
      database: DB,
      key,
      tool: { name: 'pgbackup' },
      compression: { algorithm: 'gzip', level: 6 },
      encryption: { type: 'age', recipients: [id.recipient] },
      sizes: { stored: stored.length },
      // No --clean: the restore cleans inside its own transaction (see docs on fidelity).
      pgDump: { options: ['--format=plain', '--no-password'] },
    });
    expect(manifest.server.version).toMatch(/^\d+\.\d+/);
    expect(manifest.sha256).toBe(execSync('sha256sum', { input: stored }).toString().split(' ')[0]);
    expect(manifest.tables).toEqual(
      expect.arrayContaining([
        { schema: 'public', name: 'users', rows: 2005 },
        { schema: 'sales', name: 'orders', rows: 3000 },
        { schema: 'public', name: 'empty_table', rows: 0 },
      ]),
    );
    expect(['daily', 'weekly', 'monthly', 'yearly']).toContain(manifest.tier);
    const plain = gunzipSync(await decrypt(stored, id.file));
    expect(manifest.sizes.sql).toBe(plain.length);
    expect(plain.toString()).toContain('-- PostgreSQL database dump complete');
    await restorePlain(plain, 'bk_rich_copy');
    expect(await snapshot('bk_rich_copy')).toEqual(await snapshot(DB));
    await dropDb('bk_rich_copy');
  });

  it('backs up to a folder (the default ./backups when no target is given)', async () => {
    const cwd = tmp();
    const r = await run(['backup', '--recipient', id.recipient], { cwd, env: baseEnv({ DATABASE_URL: url(DB) }) });
    expect(r.code, r.stderr).toBe(0);
    const key = keyLine(r.stdout);
    expect(filesUnder(join(cwd, 'backups'))).toEqual([key, `${key}.json`]);
    const plain = gunzipSync(await decrypt(readFileSync(join(cwd, 'backups', key)), id.file));
    await restorePlain(plain, 'bk_rich_copy2');
    expect(await snapshot('bk_rich_copy2')).toEqual(await snapshot(DB));
    await dropDb('bk_rich_copy2');
  });

  it('takes the source from the libpq PG* variables', async () => {
    const out = tmp();
    const r = await run(['backup', '--to', out, '--no-encryption'], {
      env: baseEnv({ PGHOST: '127.0.0.1', PGPORT: String(PG().port), PGUSER: 'postgres', PGPASSWORD: PG().password, PGDATABASE: DB }),
    });
    expect(r.code, r.stderr).toBe(0);
    const key = keyLine(r.stdout);
    expect(key.endsWith('.sql.gz')).toBe(true);
    expect(gunzipSync(readFileSync(join(out, key))).toString()).toContain('COPY public.users');
  });

  it('never shows the password: not in pg_dump arguments, logs or manifest', async () => {
    const pw = 'Very$ecret pw/ü';
    await sql('postgres', `DROP ROLE IF EXISTS bk_pw_user`);
    await sql('postgres', `CREATE ROLE bk_pw_user LOGIN SUPERUSER PASSWORD '${pw.replace(/'/g, "''")}'`);
    const argsLog = join(tmp(), 'args.log');
    const bin = fakeBinDir({ pg_dump: `echo "$@" >> "${argsLog}"; env | grep -c PGPASSWORD >> "${argsLog}"; exec "$REAL/pg_dump" "$@"` });
    const out = tmp();
    const r = await run(['backup', '--database', url(DB, pw, 'bk_pw_user'), '--to', out, '--recipient', id.recipient, '--log-level', 'debug'], {
      env: baseEnv({ PGBACKUP_PG_BINDIR: bin }),
    });
    expect(r.code, r.stderr).toBe(0);
    const key = keyLine(r.stdout);
    const args = readFileSync(argsLog, 'utf8');
    expect(args).toContain('--format=plain');
    expect(args).not.toContain('--clean');
    expect(args).not.toContain(pw);
    expect(args).not.toContain(encodeURIComponent(pw));
    expect(args.trim().split('\n').pop()).toBe('1'); // the password went by environment
    for (const text of [r.stdout, r.stderr, readFileSync(join(out, `${key}.json`), 'utf8')]) {
      expect(text).not.toContain(pw);
      expect(text).not.toContain(encodeURIComponent(pw));
    }
  });

  it('passes the pg_dump options through and honours --compress-level and --tier', async () => {
    const out = tmp();
    const r = await run(
      ['backup', '--database', url(DB), '--to', out, '--no-encryption', '--exclude-schema', 'sales', '--exclude-table-data', 'public.users', '--no-owner', '--compress-level', '1', '--tier', 'monthly'],
    );
    expect(r.code, r.stderr).toBe(0);
    const key = keyLine(r.stdout);
    const m = JSON.parse(readFileSync(join(out, `${key}.json`), 'utf8'));
    expect(m.pgDump.options).toEqual(expect.arrayContaining(['--exclude-schema=sales', '--exclude-table-data=public.users', '--no-owner']));
    expect(m.compression.level).toBe(1);
    expect(m.tier).toBe('monthly');
    expect(m.tables.map((t: { name: string }) => t.name).sort()).toEqual(['empty_table']);
    const text = gunzipSync(readFileSync(join(out, key))).toString();
    expect(text).not.toContain('sales.orders');
    expect(text).not.toContain('OWNER TO');
  });

  it('encrypts with a passphrase file (scrypt), readable by age-encryption', async () => {
    const out = tmp();
    const pf = join(out, 'pass');
    writeFileSync(pf, 'correct horse battery staple\n');
    const r = await run(['backup', '--database', url(DB), '--to', join(out, 'b'), '--passphrase-file', pf], { env: baseEnv({ PGBACKUP_SCRYPT_WORK_FACTOR: '12' }) });
    expect(r.code, r.stderr).toBe(0);
    const key = keyLine(r.stdout);
    const d = new Decrypter();
    d.addPassphrase('correct horse battery staple');
    const plain = gunzipSync(Buffer.from(await d.decrypt(readFileSync(join(out, 'b', key)))));
    expect(plain.toString()).toContain('-- PostgreSQL database dump complete');
    expect(readFileSync(join(out, 'b', `${key}.json`), 'utf8')).not.toContain('horse');
  });

  it('backs up every database with --all-databases, and the globals with --globals', async () => {
    // On a cluster of its own: on the suite's shared one, other files create and drop databases
    // (parallel restores' staging copies among them) while this lists and dumps every database.
    const own = await startCluster({ binDir: PG().serverBinDir });
    const other = await startCluster({ binDir: PG().serverBinDir });
    try {
      const psql = (db: string, text: string) => execFileSync(join(PG().binDir, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', text, own.url(db)], { stdio: ['ignore', 'pipe', 'pipe'] });
      psql('postgres', 'CREATE DATABASE bk_all_one');
      psql('postgres', 'CREATE DATABASE bk_all_two');
      psql('bk_all_one', 'CREATE TABLE t (x int); INSERT INTO t VALUES (1),(2)');
      psql('postgres', 'CREATE ROLE bk_glob_role NOLOGIN CREATEDB');
      // A parallel restore's staging database (the name restore-parallel.ts gives them), mid-load:
      // --all-databases must skip it and say so.
      const staging = 'pgbackup_staging_20261129T120000Z_ab12';
      psql('postgres', `CREATE DATABASE "${staging}"`);
      psql(staging, 'CREATE TABLE half_loaded (x int)');
      const out = tmp();
      const r = await run(['backup', '--database', own.url('postgres'), '--to', out, '--recipient', id.recipient, '--all-databases', '--globals']);
      expect(r.code, r.stderr).toBe(0);
      const keys = r.stdout.trim().split('\n');
      // Every database that accepts connections except the templates and the staging copy, and the globals.
      expect(keys.map((k) => k.split('/')[0]).sort()).toEqual(['_globals', 'bk_all_one', 'bk_all_two', 'postgres']);
      const skipped = r.stderr.split('\n').filter((l) => l.includes(staging));
      expect(skipped, r.stderr).toHaveLength(1);
      expect(JSON.parse(skipped[0]!)).toMatchObject({ level: 30, databases: [staging], msg: expect.stringContaining('skipped 1 staging database') });
      expect(execFileSync('find', [out, '-path', `*${staging}*`], { encoding: 'utf8' })).toBe('');
      const one = keys.find((k) => k.startsWith('bk_all_one/'))!;
      expect(gunzipSync(await decrypt(readFileSync(join(out, one)), id.file)).toString()).toMatch(/COPY public\.t \(x\) FROM stdin;\n1\n2\n\\\.\n/);
      const g = keys.find((k) => k.startsWith('_globals/'))!;
      const text = gunzipSync(await decrypt(readFileSync(join(out, g)), id.file)).toString();
      expect(text).toContain('CREATE ROLE postgres');
      expect(text).toContain('CREATE ROLE bk_glob_role');
      expect(text).not.toContain(own.password);
      // The globals restore onto a live cluster: missing roles come back, existing ones stay. Onto
      // a cluster of its own as well: restored on the suite's shared one, it brought back roles that
      // tests in other files had just dropped (a role dbprops.test.ts drops to see a warning came back).
      const rg = await run(['restore', g, '--from', out, '--to', other.url('postgres'), '--identity', id.file]);
      expect(rg.code, rg.stderr).toBe(0);
      const roles = execFileSync(join(PG().binDir, 'psql'), ['-XAtc', `SELECT rolname || ' ' || rolcreatedb FROM pg_roles WHERE rolname IN ('bk_glob_role', 'postgres') ORDER BY 1`, other.url('postgres')]).toString();
      expect(roles).toBe('bk_glob_role true\npostgres true\n');
    } finally {
      // Stopped by process id (postgres' immediate shutdown), their folders removed.
      await own.stop();
      await other.stop();
    }
  });

  it('backs up and restores databases whose names hold spaces, quotes and non-ASCII letters', async () => {
    const name = `bk "odd" naïve/é`;
    await createDb(name);
    await sql(name, `CREATE TABLE "Tab ""x""" (v text); INSERT INTO "Tab ""x""" VALUES ('a'), ('b')`);
    const out = tmp();
    const r = await run(['backup', '--database', url(name), '--to', out, '--recipient', id.recipient]);
    expect(r.code, r.stderr).toBe(0);
    const key = keyLine(r.stdout);
    expect(key.startsWith('bk "odd" naïve%2Fé/')).toBe(true);
    const m = JSON.parse(readFileSync(join(out, `${key}.json`), 'utf8'));
    expect(m.database).toBe(name);
    expect(m.tables).toEqual([{ schema: 'public', name: 'Tab "x"', rows: 2 }]);
    const l = await run(['list', '--from', out, '--json']);
    expect(JSON.parse(l.stdout).backups[0].database).toBe(name);
    const back = `bk restored "é"`;
    await dropDb(back);
    const rr = await run(['restore', key, '--from', out, '--to', url(back), '--create', '--identity', id.file]);
    expect(rr.code, rr.stderr).toBe(0);
    expect(await snapshot(back)).toEqual(await snapshot(name));
    await dropDb(name);
    await dropDb(back);
  });
});

describe('backup refuses bad configuration (exit 2, every bad field named)', () => {
  it('names an unknown flag, a malformed URL, a malformed recipient and a missing bucket in one run', async () => {
    const r = await run(['backup', '--frobnicate', '--database', 'postgres//nope:hunter2@', '--recipient', 'age1notakey', '--to', 's3:///prefix/']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--frobnicate');
    const r2 = await run(['backup', '--database', 'postgres//nope:hunter2@', '--recipient', 'age1notakey', '--to', 's3:///prefix/']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('--database');
    expect(r2.stderr).toContain('--recipient #1');
    expect(r2.stderr).toContain('names no bucket');
    expect(r2.stderr).not.toContain('hunter2');
    expect(r2.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('refuses to run without encryption unless --no-encryption', async () => {
    const out = tmp();
    const r = await run(['backup', '--database', url(DB), '--to', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--no-encryption');
    expect(filesUnder(out)).toEqual([]);
  });

  it('refuses to mix post-quantum and classic recipients', async () => {
    const pq = await newIdentity(dir, true);
    expect(pq.recipient.startsWith('age1pq1')).toBe(true);
    const r = await run(['backup', '--database', url(DB), '--to', tmp(), '--recipient', id.recipient, '--recipient', pq.recipient]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/post-quantum.*cannot be mixed/);
  });

  it('names bad durations, sizes, levels and tiers', async () => {
    const r = await run(['backup', '--database', url(DB), '--no-encryption', '--timeout', 'soon', '--part-size', 'big', '--compress-level', '11', '--tier', 'hourly', '--queue-size', '0']);
    expect(r.code).toBe(2);
    for (const f of ['--timeout', '--part-size', '--compress-level', '--tier', '--queue-size']) expect(r.stderr).toContain(f);
  });

  it('names a malformed recipients file entry', async () => {
    const f = join(tmp(), 'r.txt');
    writeFileSync(f, `# team keys\n${id.recipient}\nage1garbage\n`);
    const r = await run(['backup', '--database', url(DB), '--to', tmp(), '--recipients-file', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('entry #2');
  });
});

describe('backup failures leave nothing under the final key', () => {
  it('pg_dump exits non-zero mid-stream: exit 3, its stderr shown, no object (S3)', async () => {
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | head -c 20000; echo "pg_dump: error: simulated failure" >&2; exit 1` });
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/fail1/', '--recipient', id.recipient], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('simulated failure');
    expect(await s3keys('backups', 'fail1/')).toEqual([]);
  });

  it('pg_dump killed by SIGKILL mid-stream: exit 3, no object (folder, no partial file)', async () => {
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | head -c 50000; kill -KILL $$` });
    const out = tmp();
    const r = await run(['backup', '--database', url(DB), '--to', out, '--recipient', id.recipient], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('SIGKILL');
    expect(filesUnder(out)).toEqual([]);
  });

  it('a dump that ends without the completion marker is refused even when pg_dump exits 0', async () => {
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | head -c 30000; exit 0` });
    const out = tmp();
    const r = await run(['backup', '--database', url(DB), '--to', out, '--recipient', id.recipient], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('completion marker');
    expect(filesUnder(out)).toEqual([]);
  });

  it('connection refused: exit 3', async () => {
    const out = tmp();
    const r = await run(['backup', '--database', 'postgres://postgres:x@127.0.0.1:1/db', '--to', out, '--recipient', id.recipient]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('connection refused');
    expect(filesUnder(out)).toEqual([]);
  });

  it('authentication failed: exit 3, the wrong password not echoed', async () => {
    const out = tmp();
    const r = await run(['backup', '--database', url(DB, 'wrong-Pw-777'), '--to', out, '--recipient', id.recipient]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('authentication failed');
    expect(r.stderr).not.toContain('wrong-Pw-777');
    expect(filesUnder(out)).toEqual([]);
  });

  it('no pg_dump as new as the server: exit 3, naming the versions found and needed', async () => {
    const bin = fakeBinDir({ 'pg_dump:version': 'echo "pg_dump (PostgreSQL) 9.6.24"; exit 0' });
    const r = await run(['backup', '--database', url(DB), '--to', tmp(), '--recipient', id.recipient], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('9.6');
    expect(r.stderr).toMatch(/major version \d+ or newer/);
  });

  it('a bucket that does not exist: exit 4', async () => {
    const r = await run(['backup', '--database', url(DB), '--to', 's3://no-such-bucket-here/x/', '--recipient', id.recipient]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/NoSuchBucket|does not exist/);
  });

  it('a folder that cannot be written: exit 4, no partial file', async () => {
    const out = tmp();
    writeFileSync(join(out, 'bk_rich'), 'a file where a folder should be');
    const r = await run(['backup', '--database', url(DB), '--to', out, '--recipient', id.recipient]);
    expect(r.code).toBe(4);
    expect(filesUnder(out)).toEqual(['bk_rich']);
  });

  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    it(`${sig} mid-upload: exit ${code}, nothing stored, pg_dump stopped`, async () => {
      const pidFile = join(tmp(), 'pid');
      // A pg_dump that writes a little, then stalls (as a slow server would).
      const bin = fakeBinDir({ pg_dump: `echo $$ > "${pidFile}"; "$REAL/pg_dump" "$@" | head -c 100000; exec sleep 8` });
      const prefix = `sig-${code}/`;
      let pid = 0;
      const p = run(['backup', '--database', url(DB), '--to', `s3://backups/${prefix}`, '--recipient', id.recipient, '--log-level', 'debug'], {
        env: baseEnv({ PGBACKUP_PG_BINDIR: bin }),
        onSpawn: (x) => (pid = x),
        onStderr: (s) => {
          if (s.includes('backup started')) setTimeout(() => process.kill(pid, sig), 700);
        },
      });
      const r = await p;
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toContain(`interrupted by ${sig}`);
      expect(await s3keys('backups', prefix)).toEqual([]);
      const dumpPid = Number(readFileSync(pidFile, 'utf8'));
      await new Promise((res) => setTimeout(res, 300));
      expect(() => process.kill(dumpPid, 0)).toThrow();
    });
  }

  it('a signal at any moment around the start never ends in exit 0: several runs, each interrupted right as it starts', async () => {
    // An interrupt that came before the upload listened for it left the upload waiting for a
    // body that never came; Node then ran out of work and exited 0 without a word (5 of 6
    // runs). Whatever the timing, the answer must be the signal's code and nothing stored.
    for (const [n, delay] of [0, 0, 20, 50, 100].entries()) {
      const prefix = `sig-early-${n}/`;
      let pid = 0;
      const r = await run(['backup', '--database', url(DB), '--to', `s3://backups/${prefix}`, '--recipient', id.recipient], {
        onSpawn: (x) => (pid = x),
        onStderr: (s) => {
          if (s.includes('backup started')) setTimeout(() => process.kill(pid, 'SIGTERM'), delay);
        },
      });
      if (r.code === 0) throw new Error(`run ${n} (signal ${delay} ms after the start) exited 0 despite SIGTERM:\n${r.stderr}`);
      expect(r.code, r.stderr).toBe(143);
      expect(await s3keys('backups', prefix)).toEqual([]);
    }
  });

  it('--timeout ends a run that takes too long: nothing stored', async () => {
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | head -c 1000; exec sleep 8` });
    const out = tmp();
    const r = await run(['backup', '--database', url(DB), '--to', out, '--recipient', id.recipient, '--timeout', '1500ms'], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('--timeout');
    expect(filesUnder(out)).toEqual([]);
  });

  it('the stall guard kills a pg_dump that writes nothing: exit 3', async () => {
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | head -c 1000; exec sleep 8` });
    const out = tmp();
    const r = await run(['backup', '--database', url(DB), '--to', out, '--recipient', id.recipient, '--stall-timeout', '1s'], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('stall guard');
    expect(filesUnder(out)).toEqual([]);
  });
});

describe('keygen', () => {
  it('writes an identity with mode 0600, prints its recipient, and never overwrites', async () => {
    const d = tmp();
    const f = join(d, 'k.txt');
    const r = await run(['keygen', '-o', f]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^age1[0-9a-z]{58}$/);
    expect((await import('node:fs')).statSync(f).mode & 0o777).toBe(0o600);
    expect(readFileSync(f, 'utf8')).toContain(`# public key: ${r.stdout.trim()}`);
    const again = await run(['keygen', '-o', f]);
    expect(again.code).toBe(2);
    needCommand('age-keygen', 'age');
    expect(execFileSync('age-keygen', ['-y', f]).toString().trim()).toBe(r.stdout.trim());
    mkdirSync(join(d, 'sub'));
    chmodSync(join(d, 'sub'), 0o755);
  });
});

describe('retention tiers at upload', () => {
  it('--tier auto: the first backup of a database is yearly, the next one the same day daily; a fixed tier is kept', async () => {
    const out = tmp();
    const tiers: string[] = [];
    for (const extra of [[], [], ['--tier', 'weekly']]) {
      const r = await run(['backup', '--database', url(DB), '--to', out, '--no-encryption', ...extra]);
      expect(r.code, r.stderr).toBe(0);
      tiers.push(JSON.parse(readFileSync(join(out, `${keyLine(r.stdout)}.json`), 'utf8')).tier);
    }
    expect(tiers).toEqual(['yearly', 'daily', 'weekly']);
  });
  it('two backups in the same second never overwrite each other', async () => {
    const out = tmp();
    const [a, b] = await Promise.all([
      run(['backup', '--database', url(DB), '--to', out, '--no-encryption']),
      run(['backup', '--database', url(DB), '--to', out, '--no-encryption']),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(keyLine(a.stdout)).not.toBe(keyLine(b.stdout));
    expect(filesUnder(out).filter((f) => f.endsWith('.sql.gz')).length).toBe(2);
  });
});
