/**
 * Issue 12: libpq's connection settings reach every client (a TLS cluster with a private CA made
 * here by openssl), and storage access stays inside its target.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { PG, run, url, tmp, createDb, dropDb, sql, baseEnv, newIdentity, filesUnder, psqlEnv } from './helpers.js';
// @ts-expect-error: a plain .mjs support module
import { startCluster } from '../support/pg.mjs';

type Cluster = { port: number; password: string; dir: string; binDir: string; stop(): Promise<void> };

let cluster: Cluster;
let certs: string;
let id: { file: string; recipient: string };
const PW = 'Tls-pw-Q7x';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** CA, a second (wrong) CA, a server certificate for IP 127.0.0.1 and DNS db.test, a client certificate for "certuser". */
function makeCerts(dir: string): void {
  const ca = (name: string) => openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`], dir);
  ca('ca');
  ca('wrongca');
  const leaf = (name: string, cn: string, ext: string) => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
    chmodSync(join(dir, `${name}.key`), 0o600);
  };
  leaf('server', 'db.test', 'subjectAltName=IP:127.0.0.1,DNS:db.test\n');
  leaf('client', 'certuser', 'extendedKeyUsage=clientAuth\n');
}

async function tsql<T = Record<string, unknown>>(db: string, text: string): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', password: PW, database: db, ssl: { rejectUnauthorized: false } });
  await c.connect();
  try {
    return (await c.query(text)).rows as T[];
  } finally {
    await c.end();
  }
}

const turl = (db: string, extra = '') => `postgres://postgres:${PW}@127.0.0.1:${cluster.port}/${db}${extra}`;

beforeAll(async () => {
  certs = tmp('pgbackup-certs-');
  makeCerts(certs);
  id = await newIdentity(certs);
  cluster = (await startCluster({ password: PW })) as Cluster;
  // Server key files: owned by the server's user, mode 0600.
  const data = join(cluster.dir, 'data');
  const uid = process.getuid?.() === 0 ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })) : undefined;
  const gid = process.getuid?.() === 0 ? Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) : undefined;
  for (const f of ['server.crt', 'server.key', 'ca.crt']) {
    writeFileSync(join(data, f), readFileSync(join(certs, f)));
    chmodSync(join(data, f), 0o600);
    if (uid !== undefined) chownSync(join(data, f), uid, gid!);
  }
  // Only TLS connections over TCP; "certuser" authenticates with its certificate.
  const hba = join(data, 'pg_hba.conf');
  const old = readFileSync(hba, 'utf8').replace(/^host\s/gm, 'hostssl ');
  writeFileSync(hba, `hostssl all certuser 127.0.0.1/32 cert\nhostnossl all all 127.0.0.1/32 reject\n${old}`);
  const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', password: PW, database: 'postgres' });
  await admin.connect();
  await admin.query(`ALTER SYSTEM SET ssl = on`);
  await admin.query(`ALTER SYSTEM SET ssl_cert_file = 'server.crt'`);
  await admin.query(`ALTER SYSTEM SET ssl_key_file = 'server.key'`);
  await admin.query(`ALTER SYSTEM SET ssl_ca_file = 'ca.crt'`);
  await admin.query(`SELECT pg_reload_conf()`);
  await admin.end();
  await new Promise((r) => setTimeout(r, 500));
  await tsql('postgres', `CREATE ROLE certuser SUPERUSER LOGIN`);
  await tsql('postgres', `CREATE DATABASE tls_src`);
  await tsql('tls_src', `CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 50) g`);
  const ssl = await tsql<{ ssl: boolean }>('postgres', `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`);
  expect(ssl[0]!.ssl).toBe(true);
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

/** A fresh folder target and the env for a run (libpq variables on top of the clean base). */
function envWith(extra: Record<string, string>) {
  return baseEnv(extra);
}

async function backupTo(folder: string, database: string, env: NodeJS.ProcessEnv) {
  return run(['backup', '--database', database, '--to', folder, '--recipient', id.recipient], { env });
}

describe('TLS: the libpq environment and URL settings reach pg_dump, psql and node-postgres', () => {
  let goodKey: string;
  let goodFolder: string;

  it('a wrong CA in PGSSLROOTCERT (verify-full) fails the backup with exit 3 and stores nothing', async () => {
    const folder = tmp();
    for (const mode of ['verify-full', 'verify-ca', 'require']) {
      const env = envWith({ PGSSLMODE: mode, PGSSLROOTCERT: join(certs, 'wrongca.crt') });
      const r = await backupTo(folder, turl('tls_src'), env);
      expect(r.code, `${mode}: ${r.stderr}`).toBe(3);
      expect(r.stderr).toMatch(/certificate/i);
    }
    expect(filesUnder(folder)).toEqual([]);
  });

  it('the right CA, in the environment, works for backup, restore and verify --restore-into', async () => {
    goodFolder = tmp();
    const env = envWith({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: join(certs, 'ca.crt') });
    const b = await backupTo(goodFolder, turl('tls_src'), env);
    expect(b.code, b.stderr).toBe(0);
    goodKey = b.stdout.trim();
    await tsql('postgres', 'DROP DATABASE IF EXISTS tls_dst1');
    const r = await run(['restore', goodKey, '--from', goodFolder, '--to', turl('tls_dst1'), '--create', '--identity', id.file], { env });
    expect(r.code, r.stderr).toBe(0);
    expect((await tsql<{ n: string }>('tls_dst1', 'SELECT count(*) AS n FROM t'))[0]!.n).toBe('50');
    const v = await run(['verify', goodKey, '--from', goodFolder, '--restore-into', turl('postgres'), '--identity', id.file], { env });
    expect(v.code, v.stderr).toBe(0);
  });

  it('a wrong CA fails restore and verify --restore-into; the target is unchanged, no scratch database is left', async () => {
    const env = envWith({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: join(certs, 'wrongca.crt') });
    await tsql('postgres', 'DROP DATABASE IF EXISTS tls_keep');
    await tsql('postgres', 'CREATE DATABASE tls_keep');
    await tsql('tls_keep', `CREATE TABLE keepme (v text); INSERT INTO keepme VALUES ('precious')`);
    const dbsBefore = await tsql<{ datname: string }>('postgres', 'SELECT datname FROM pg_database ORDER BY 1');
    const r = await run(['restore', goodKey, '--from', goodFolder, '--to', turl('tls_keep'), '--clean', '--yes', '--identity', id.file], { env });
    expect([3, 6], r.stderr).toContain(r.code);
    expect(await tsql('tls_keep', 'SELECT v FROM keepme')).toEqual([{ v: 'precious' }]);
    expect(await tsql('tls_keep', `SELECT 1 FROM pg_class WHERE relname = 't'`)).toEqual([]);
    const v = await run(['verify', goodKey, '--from', goodFolder, '--restore-into', turl('postgres'), '--identity', id.file], { env });
    expect([3, 6], v.stderr).toContain(v.code);
    expect(await tsql('postgres', 'SELECT datname FROM pg_database ORDER BY 1')).toEqual(dbsBefore);
    // Nothing was added to the folder either (no safety backup); verify recorded its failure beside the manifest.
    expect(filesUnder(goodFolder).filter((f) => !f.endsWith('.verified.json')).length).toBe(2);
    expect(JSON.parse(readFileSync(join(goodFolder, `${goodKey}.verified.json`), 'utf8'))).toMatchObject({ ok: false, restored: false });
  });

  it('the right CA in the URL (sslrootcert=) works for all three, and wins over a wrong one in the environment', async () => {
    const env = envWith({ PGSSLROOTCERT: join(certs, 'wrongca.crt'), PGSSLMODE: 'verify-full' });
    const q = `?sslmode=verify-full&sslrootcert=${encodeURIComponent(join(certs, 'ca.crt'))}`;
    const folder = tmp();
    const b = await backupTo(folder, turl('tls_src', q), env);
    expect(b.code, b.stderr).toBe(0);
    await tsql('postgres', 'DROP DATABASE IF EXISTS tls_dst2');
    const r = await run(['restore', b.stdout.trim(), '--from', folder, '--to', turl('tls_dst2', q), '--create', '--identity', id.file], { env });
    expect(r.code, r.stderr).toBe(0);
    const v = await run(['verify', b.stdout.trim(), '--from', folder, '--restore-into', turl('postgres', q), '--identity', id.file], { env });
    expect(v.code, v.stderr).toBe(0);
  });

  it('verify-full refuses a host name the certificate does not hold; verify-ca does not check it (key=value form)', async () => {
    const ca = join(certs, 'ca.crt');
    const kv = (host: string, mode: string) => `host=${host} hostaddr=127.0.0.1 port=${cluster.port} user=postgres dbname=tls_src sslmode=${mode} sslrootcert='${ca}'`;
    const env = envWith({ PGPASSWORD: PW });
    const folder = tmp();
    const bad = await backupTo(folder, kv('other.test', 'verify-full'), env);
    expect(bad.code, bad.stderr).toBe(3);
    expect(bad.stderr).toMatch(/other\.test|altnames|host name/i);
    expect(filesUnder(folder)).toEqual([]);
    const good = await backupTo(folder, kv('db.test', 'verify-full'), env);
    expect(good.code, good.stderr).toBe(0);
    const ca2 = await backupTo(tmp(), kv('other.test', 'verify-ca'), env);
    expect(ca2.code, ca2.stderr).toBe(0);
  });

  it('a client certificate works where the server requires one (and its absence fails)', async () => {
    const u = `postgres://certuser@127.0.0.1:${cluster.port}/tls_src?sslmode=verify-full&sslrootcert=${encodeURIComponent(join(certs, 'ca.crt'))}`;
    const folder = tmp();
    const none = await backupTo(folder, u, envWith({ HOME: tmp() }));
    expect(none.code, none.stderr).toBe(3);
    expect(filesUnder(folder)).toEqual([]);
    const env = envWith({ PGSSLCERT: join(certs, 'client.crt'), PGSSLKEY: join(certs, 'client.key') });
    const b = await backupTo(folder, u, env);
    expect(b.code, b.stderr).toBe(0);
    // The default ~/.postgresql/postgresql.crt and .key, as libpq.
    const home = tmp();
    mkdirSync(join(home, '.postgresql'));
    writeFileSync(join(home, '.postgresql/postgresql.crt'), readFileSync(join(certs, 'client.crt')));
    writeFileSync(join(home, '.postgresql/postgresql.key'), readFileSync(join(certs, 'client.key')), { mode: 0o600 });
    const h = await backupTo(tmp(), u, envWith({ HOME: home }));
    expect(h.code, h.stderr).toBe(0);
  });

  it('PGSERVICE: the service file gives the settings to every client', async () => {
    const f = join(tmp(), 'services.conf');
    writeFileSync(f, `[tls]\nhost=127.0.0.1\nport=${cluster.port}\nuser=postgres\ndbname=tls_src\nsslmode=verify-full\nsslrootcert=${join(certs, 'wrongca.crt')}\n`);
    const folder = tmp();
    const bad = await run(['backup', '--to', folder, '--recipient', id.recipient], { env: envWith({ PGSERVICE: 'tls', PGSERVICEFILE: f, PGPASSWORD: PW }) });
    expect(bad.code, bad.stderr).toBe(3);
    // The string wins over the service file (which wins over the environment).
    const good = await run(['backup', '--database', `service=tls sslrootcert=${join(certs, 'ca.crt')}`, '--to', folder, '--recipient', id.recipient], {
      env: envWith({ PGSERVICE: 'tls', PGSERVICEFILE: f, PGPASSWORD: PW }),
    });
    expect(good.code, good.stderr).toBe(0);
  });
});

describe('PGOPTIONS and PGAPPNAME reach pg_dump and psql (what the server saw)', () => {
  beforeAll(async () => {
    await createDb('sec_opts');
    await sql('sec_opts', `CREATE TABLE secret (v text); INSERT INTO secret VALUES ('x'); DROP ROLE IF EXISTS sec_nopriv; CREATE ROLE sec_nopriv`);
  });

  it('pg_dump runs with PGOPTIONS: -c role=... makes it fail on a table the role cannot read', async () => {
    const folder = tmp();
    const r = await backupTo(folder, url('sec_opts'), baseEnv({ PGOPTIONS: '-c role=sec_nopriv' }));
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/pg_dump/);
    expect(r.stderr).toMatch(/permission denied for table secret/);
    expect(filesUnder(folder)).toEqual([]);
  });

  it('pg_dump connects with PGAPPNAME (pg_stat_activity of a dump waiting on a lock); ps shows no password', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: PG().port, user: 'postgres', password: PG().password, database: 'sec_opts' });
    await c.connect();
    await c.query('BEGIN; LOCK TABLE secret IN ACCESS EXCLUSIVE MODE');
    let pid = 0;
    const folder = tmp();
    const done = run(['backup', '--database', url('sec_opts'), '--to', folder, '--recipient', id.recipient], {
      env: baseEnv({ PGAPPNAME: 'sec-app-dump' }),
      onSpawn: (p) => (pid = p),
    });
    let seen: Array<{ application_name: string; query: string }> = [];
    for (let i = 0; i < 100 && seen.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = await sql<(typeof seen)[number]>('sec_opts', `SELECT application_name, query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = 'sec_opts'`);
    }
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    await c.query('COMMIT');
    await c.end();
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(seen.map((s) => s.application_name)).toEqual(['sec-app-dump']);
    expect(seen[0]!.query).toMatch(/LOCK TABLE/);
    expect(cmdline).not.toContain(PG().password);
    expect(cmdline).toContain('***');
    expect(r.stderr).toMatch(/holds a password.*PGPASSFILE/);
  });

  it('psql runs with PGOPTIONS and PGAPPNAME (a restored statement records its session settings)', async () => {
    const dir = tmp();
    const dump = execFileSync(join(PG().binDir, 'pg_dump'), ['--format=plain'], { env: psqlEnv('sec_opts'), encoding: 'utf8' });
    const marker = '-- PostgreSQL database dump complete';
    expect(dump).toContain(marker);
    const probe = `CREATE TABLE public.seen AS SELECT current_setting('application_name') AS app, current_setting('work_mem') AS wm;\n\n`;
    writeFileSync(join(dir, 'probe.sql'), dump.replace(marker, probe + marker));
    await dropDb('sec_psql');
    const r = await run(['restore', './probe.sql', '--to', url('sec_psql'), '--create'], {
      cwd: dir,
      env: baseEnv({ PGOPTIONS: '-c work_mem=7777kB', PGAPPNAME: 'sec-app-psql' }),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(await sql('sec_psql', 'SELECT app, wm FROM seen')).toEqual([{ app: 'sec-app-psql', wm: '7777kB' }]);
  });
});

describe('storage stays inside its target', () => {
  let outside: string;
  let target: string;
  let key: string;

  beforeAll(async () => {
    await createDb('sec_conf');
    await sql('sec_conf', `CREATE TABLE a (v int); INSERT INTO a VALUES (1)`);
    target = tmp();
    const b = await backupTo(target, url('sec_conf'), baseEnv());
    expect(b.code, b.stderr).toBe(0);
    key = b.stdout.trim();
    outside = tmp();
  });

  it('a database folder symlinked out of the target: backup, list and fetch refuse (exit 4), nothing outside is read or written', async () => {
    const t = tmp();
    symlinkSync(outside, join(t, 'sec_conf'));
    const b = await backupTo(t, url('sec_conf'), baseEnv());
    expect(b.code, b.stderr).toBe(4);
    expect(b.stderr).toMatch(/symbolic link leading out/);
    expect(filesUnder(outside)).toEqual([]);
    // A backup placed outside, reachable through the link: list and fetch refuse it.
    const rel = key.slice('sec_conf/'.length);
    mkdirSync(join(outside, rel, '..'), { recursive: true });
    writeFileSync(join(outside, rel), readFileSync(join(target, key)));
    const l = await run(['list', '--from', t]);
    expect(l.code, l.stderr).toBe(4);
    expect(l.stdout).toBe('');
    const f = await run(['fetch', key, '--from', t, '--identity', id.file]);
    expect(f.code, f.stderr).toBe(4);
    expect(f.stdout).toBe('');
    expect(f.stderr).toContain(join(t, 'sec_conf'));
  });

  it('a symlinked subfolder to /etc: fetch etc/passwd refuses and prints nothing', async () => {
    const t = tmp();
    symlinkSync('/etc', join(t, 'etc'));
    const f = await run(['fetch', 'etc/passwd', '--from', t]);
    expect(f.code, f.stderr).toBe(4);
    expect(f.stdout).toBe('');
  });

  it('keys with "..", empty segments or backslashes are refused with exit 2, for folder and S3 targets', async () => {
    writeFileSync(join(outside, 'x.sql'), 'SELECT 1;\n');
    const rel = `../${outside.split('/').pop()}/x.sql`;
    for (const k of [`sec_conf/${rel}`, 'sec_conf//x.sql', 'sec_conf\\..\\x.sql']) {
      const f = await run(['fetch', k, '--from', target]);
      expect(f.code, `${k}: ${f.stderr}`).toBe(2);
      expect(f.stdout).toBe('');
    }
    const r = await run(['restore', `sec_conf/${rel}`, '--from', target, '--to', url('sec_never'), '--create']);
    expect(r.code, r.stderr).toBe(2);
    for (const [k, from] of [['p/../other/x.sql.gz.age', 's3://backups/sec/'], ['s3://backups/sec/../x.sql.gz.age', 's3://backups/sec/']]) {
      const f = await run(['fetch', k!, '--from', from!]);
      expect(f.code, `${k}: ${f.stderr}`).toBe(2);
    }
  });

  it('an absolute path without the file form is a key (refused); a name not in the target is never read from the current folder', async () => {
    const f = await run(['fetch', '/etc/passwd', '--from', target]);
    expect(f.code, f.stderr).toBe(2);
    expect(f.stdout).toBe('');
    const cwd = tmp();
    writeFileSync(join(cwd, 'local.sql'), 'SELECT 42 AS local_file_was_read;\n');
    const g = await run(['fetch', 'local.sql', '--from', target], { cwd });
    expect(g.code, g.stderr).toBe(4);
    expect(g.stdout).toBe('');
    expect(g.stderr).toMatch(/file:PATH/);
    // The file forms read it.
    for (const ref of ['./local.sql', 'file:local.sql', join(cwd, 'local.sql')]) {
      const h = await run(['fetch', ref, '--from', target], { cwd });
      expect(h.code, `${ref}: ${h.stderr}`).toBe(0);
      expect(h.stdout).toContain('local_file_was_read');
    }
  });
});
