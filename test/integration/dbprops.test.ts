// Database-level properties (encoding, locale, owner, ACL, settings, comment), a failed --create
// leaving nothing behind, and names in every server encoding (issue 10).
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { join } from 'node:path';
import { PG, ROOT, run, url, tmp, dropDb, sql, snapshot, newIdentity, psqlEnv, fakeBinDir, baseEnv } from './helpers.js';
// @ts-expect-error plain JS test support
import { startCluster } from '../support/pg.mjs';
import { tablespacePlan } from '../../src/ops/tablespaces.js';
import { countRows, databaseProperties, tableKey } from '../../src/pg/db.js';
import { connFromUrl } from '../../src/pg/conn.js';

const q = (s: string) => `"${s.replace(/"/g, '""')}"`;

async function ensureRole(name: string): Promise<void> {
  await sql('postgres', `DO $$ BEGIN CREATE ROLE ${q(name)} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
}

async function exists(db: string): Promise<boolean> {
  return (await sql('postgres', `SELECT 1 FROM pg_database WHERE datname = $1`, [db])).length === 1;
}

/** What pg_database, pg_db_role_setting and shobj_description say about a database. */
async function dbState(db: string) {
  const [d] = await sql<Record<string, unknown>>(
    'postgres',
    `SELECT pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype, datlocprovider::text AS provider,
            daticulocale AS icu, pg_get_userbyid(datdba) AS owner, datacl::text AS acl, datconnlimit AS connlimit,
            shobj_description(oid, 'pg_database') AS comment
       FROM pg_database WHERE datname = $1`,
    [db],
  );
  const settings = await sql<{ role: string; config: string }>(
    'postgres',
    `SELECT CASE WHEN s.setrole = 0 THEN '-' ELSE pg_get_userbyid(s.setrole) END AS role, s.setconfig::text AS config
       FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1 ORDER BY 1`,
    [db],
  );
  return { ...d, settings: settings.map((s) => `${s.role}: ${s.config}`) } as Record<string, unknown>;
}

function psqlRaw(db: string, bytes: Buffer, clientEncoding: string): void {
  const f = join(tmp(), 'x.sql');
  writeFileSync(f, bytes);
  execFileSync(join(PG().binDir, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-f', f], {
    env: { ...psqlEnv(db), PGCLIENTENCODING: clientEncoding },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** Every user table's name bytes and rows, for a database whose names a UTF8 connection cannot read. */
async function rawSnapshot(db: string): Promise<Array<Record<string, string>>> {
  return sql(
    db,
    `SELECT encode(convert_to(n.nspname::text, getdatabaseencoding()), 'hex') AS s, encode(convert_to(c.relname::text, getdatabaseencoding()), 'hex') AS t,
            query_to_xml(format('SELECT * FROM ONLY %s ORDER BY 1', c.oid::regclass), false, true, '')::text AS x
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2`,
  );
}

async function backup(db: string, folder: string, recipient: string): Promise<string> {
  const r = await run(['backup', '--database', url(db), '--to', folder, '--recipient', recipient]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read any field of the JSON
function manifestOf(folder: string, key: string): Record<string, any> {
  return JSON.parse(readFileSync(join(folder, key + '.json'), 'utf8'));
}

let dir: string;
let id: { file: string; recipient: string };
const SRC = 'dp_src';
let folder: string;
let key: string;

beforeAll(async () => {
  dir = tmp();
  id = await newIdentity(dir);
  await ensureRole('dp_owner');
  await ensureRole('dp_reader');
  await dropDb(SRC);
  await sql('postgres', `CREATE DATABASE ${SRC} TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' OWNER dp_owner`);
  for (const s of [
    `REVOKE CONNECT ON DATABASE ${SRC} FROM PUBLIC`,
    `GRANT CONNECT ON DATABASE ${SRC} TO dp_reader`,
    `ALTER DATABASE ${SRC} SET work_mem = '7MB'`,
    `ALTER ROLE dp_reader IN DATABASE ${SRC} SET search_path = 'a', "b c"`,
    `COMMENT ON DATABASE ${SRC} IS 'the source''s comment'`,
    `ALTER DATABASE ${SRC} CONNECTION LIMIT 17`,
  ]) {
    await sql('postgres', s);
  }
  await sql(SRC, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'crème'), (2, 'brûlée'), (3, NULL)`);
  folder = tmp();
  key = await backup(SRC, folder, id.recipient);
});

describe('database properties', () => {
  it('are recorded in the manifest', () => {
    const p = manifestOf(folder, key).databaseProperties;
    expect(p).toMatchObject({ encoding: 'LATIN1', collate: 'C', ctype: 'C', localeProvider: 'libc', owner: 'dp_owner', comment: "the source's comment", connectionLimit: 17 });
    expect(p.settings).toEqual([
      { role: null, name: 'work_mem', value: '7MB' },
      { role: 'dp_reader', name: 'search_path', value: 'a, "b c"' },
    ]);
    expect(p.acl).toBe('{=T/dp_owner,dp_owner=CTc/dp_owner,dp_reader=c/dp_owner}');
  });

  it('restore --create reproduces encoding, locale, owner, ACL, settings, comment and contents', async () => {
    await dropDb('dp_dst');
    const r = await run(['restore', key, '--from', folder, '--to', url('dp_dst'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await dbState('dp_dst')).toEqual(await dbState(SRC));
    const st = await dbState('dp_dst');
    expect(st).toMatchObject({ encoding: 'LATIN1', owner: 'dp_owner', acl: '{=T/dp_owner,dp_owner=CTc/dp_owner,dp_reader=c/dp_owner}', connlimit: 17 });
    expect(st.settings).toEqual(['-: {work_mem=7MB}', 'dp_reader: {"search_path=a, \\"b c\\""}']);
    expect(await snapshot('dp_dst')).toEqual(await snapshot(SRC));
  });

  it('an ICU source is created with its ICU locale', async () => {
    const icu = await sql<{ n: number }>('postgres', `SELECT count(*)::int AS n FROM pg_collation WHERE collprovider = 'i'`);
    if (!icu[0]!.n) throw new Error('this PostgreSQL lacks ICU (no ICU collations): the ICU test cannot run');
    await dropDb('dp_icu');
    await sql('postgres', `CREATE DATABASE dp_icu TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE'`);
    await sql('dp_icu', `CREATE TABLE w (v text); INSERT INTO w VALUES ('Äpfel'), ('Zebra'), ('apfel')`);
    const k = await backup('dp_icu', folder, id.recipient);
    await dropDb('dp_icu_dst');
    const r = await run(['restore', k, '--from', folder, '--to', url('dp_icu_dst'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await dbState('dp_icu_dst')).toMatchObject({ provider: 'i', icu: 'de-DE', encoding: 'UTF8' });
    expect(await sql('dp_icu_dst', `SELECT v FROM w ORDER BY v`)).toEqual(await sql('dp_icu', `SELECT v FROM w ORDER BY v`));
  });

  it('a locale the target lacks stops --create with exit 2 before anything is created; --db-locale / --create-with-defaults choose another', async () => {
    // The same backup, its manifest saying the source had a locale this cluster lacks.
    const f2 = tmp();
    cpSync(folder, f2, { recursive: true });
    const m = manifestOf(f2, key);
    m.databaseProperties.collate = m.databaseProperties.ctype = 'xx_YY.ISO-8859-1';
    writeFileSync(join(f2, key + '.json'), JSON.stringify(m));
    await dropDb('dp_noloc');
    const r = await run(['restore', key, '--from', f2, '--to', url('dp_noloc'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('xx_YY.ISO-8859-1');
    expect(r.stderr).toContain('--db-locale');
    expect(await exists('dp_noloc')).toBe(false);

    const r2 = await run(['restore', key, '--from', f2, '--to', url('dp_noloc'), '--create', '--db-locale', 'C', '--identity', id.file]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(await dbState('dp_noloc')).toMatchObject({ encoding: 'LATIN1', collate: 'C', ctype: 'C', owner: 'dp_owner' });
    expect(await snapshot('dp_noloc')).toEqual(await snapshot(SRC));

    await dropDb('dp_defaults');
    const r3 = await run(['restore', key, '--from', f2, '--to', url('dp_defaults'), '--create', '--create-with-defaults', '--identity', id.file]);
    expect(r3.code, r3.stderr).toBe(0);
    expect(await dbState('dp_defaults')).toMatchObject({ encoding: 'UTF8', collate: 'C', owner: 'dp_owner', comment: "the source's comment" });
    expect(await snapshot('dp_defaults')).toEqual(await snapshot(SRC));

    const r4 = await run(['restore', key, '--from', f2, '--to', url('dp_defaults'), '--clean', '--yes', '--db-encoding', 'UTF8', '--identity', id.file]);
    expect(r4.code).toBe(2);
    expect(r4.stderr).toContain('--db-encoding: only with --create');
  });

  it('--clean keeps the target database\'s own properties; --apply-database-properties applies the source\'s', async () => {
    await dropDb('dp_exist');
    await sql('postgres', `CREATE DATABASE dp_exist`);
    await sql('postgres', `ALTER DATABASE dp_exist SET work_mem = '3MB'`);
    await sql('postgres', `ALTER DATABASE dp_exist SET statement_timeout = '5s'`);
    await sql('postgres', `COMMENT ON DATABASE dp_exist IS 'mine'`);
    await sql('dp_exist', `CREATE TABLE old (x int); INSERT INTO old VALUES (1)`);
    const before = await dbState('dp_exist');
    const r = await run(['restore', key, '--from', folder, '--to', url('dp_exist'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await dbState('dp_exist')).toEqual(before);
    expect(await snapshot('dp_exist')).toEqual(await snapshot(SRC));

    const r2 = await run(['restore', key, '--from', folder, '--to', url('dp_exist'), '--clean', '--yes', '--no-safety-backup', '--apply-database-properties', '--identity', id.file]);
    expect(r2.code, r2.stderr).toBe(0);
    const after = await dbState('dp_exist');
    const src = await dbState(SRC);
    // Encoding and locale cannot change in place (a warning says so); the rest is the source's.
    expect({ ...after, encoding: src.encoding }).toEqual(src);
    expect(r2.stderr).toContain('only --create sets them');
    expect(await snapshot('dp_exist')).toEqual(await snapshot(SRC));
  });

  it('a role the target lacks is a warning, not a failure', async () => {
    await ensureRole('dp_gone');
    await dropDb('dp_roles');
    await sql('postgres', `CREATE DATABASE dp_roles OWNER dp_gone`);
    await sql('postgres', `ALTER ROLE dp_gone IN DATABASE dp_roles SET work_mem = '9MB'`);
    await sql('postgres', `GRANT CREATE ON DATABASE dp_roles TO dp_gone`);
    await sql('dp_roles', `CREATE TABLE t (x int); INSERT INTO t VALUES (1)`);
    const k = await backup('dp_roles', folder, id.recipient);
    await dropDb('dp_roles');
    await sql('postgres', `DROP ROLE dp_gone`);
    await dropDb('dp_roles_dst');
    const r = await run(['restore', k, '--from', folder, '--to', url('dp_roles_dst'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/owner: role \\?"dp_gone\\?" does not exist on the target/);
    expect(r.stderr).toMatch(/settings: role \\?"dp_gone\\?" does not exist on the target/);
    expect(await dbState('dp_roles_dst')).toMatchObject({ owner: 'postgres', settings: [] });
    expect(await sql('dp_roles_dst', `SELECT x FROM t`)).toEqual([{ x: 1 }]);
  });
});

describe('a failed --create restore drops the database it created', () => {
  const COMPLETE = '\n--\n-- PostgreSQL database dump complete\n--\n\n';

  it('psql error in the middle: exit 6, no database left', async () => {
    const f = join(tmp(), 'broken.sql');
    writeFileSync(f, `CREATE TABLE a (i int);\nINSERT INTO a VALUES (1);\nSELECT no_such_function();\nCREATE TABLE b (i int);\n${COMPLETE}`);
    await dropDb('dp_fail');
    const r = await run(['restore', f, '--to', url('dp_fail'), '--create']);
    expect(r.code, r.stderr).toBe(6);
    expect(await exists('dp_fail')).toBe(false);
  });

  it('damaged data after the header: exit 5, no database left', async () => {
    const f2 = tmp();
    cpSync(folder, f2, { recursive: true });
    const obj = join(f2, key);
    const b = readFileSync(obj);
    b[b.length - 20]! ^= 0x01;
    writeFileSync(obj, b);
    await dropDb('dp_damaged');
    const r = await run(['restore', key, '--from', f2, '--to', url('dp_damaged'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(5);
    expect(await exists('dp_damaged')).toBe(false);
  });

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig} while psql loads: exit ${sig === 'SIGTERM' ? 143 : 130}, no database left`, async () => {
      const f = join(tmp(), 'slow.sql');
      writeFileSync(f, `CREATE TABLE a (i int);\nINSERT INTO a VALUES (1);\nSELECT pg_sleep(60);\n${COMPLETE}`);
      await dropDb('dp_interrupted');
      let pid = 0;
      const done = run(['restore', f, '--to', url('dp_interrupted'), '--create'], { onSpawn: (p) => (pid = p) });
      const deadline = Date.now() + 30_000;
      for (;;) {
        const busy = await sql(`postgres`, `SELECT 1 FROM pg_stat_activity WHERE datname = 'dp_interrupted' AND query LIKE '%pg_sleep%' AND state = 'active'`);
        if (busy.length) break;
        if (Date.now() > deadline) throw new Error('the restore never reached pg_sleep');
        await new Promise((res) => setTimeout(res, 100));
      }
      process.kill(pid, sig);
      const r = await done;
      expect(r.code, r.stderr).toBe(sig === 'SIGTERM' ? 143 : 130);
      expect(await exists('dp_interrupted')).toBe(false);
    });
  }

  it('an existing database is never dropped by a failed restore', async () => {
    const f = join(tmp(), 'broken.sql');
    writeFileSync(f, `CREATE TABLE a (i int);\nSELECT no_such_function();\n${COMPLETE}`);
    await dropDb('dp_keep');
    await sql('postgres', 'CREATE DATABASE dp_keep');
    const r = await run(['restore', f, '--to', url('dp_keep'), '--create']);
    expect(r.code, r.stderr).toBe(6);
    expect(await exists('dp_keep')).toBe(true);
  });
});

describe('names in every server encoding', () => {
  it('LATIN1: manifest names are Unicode, restore finds every table', async () => {
    await dropDb('dp_latin1');
    await sql('postgres', `CREATE DATABASE dp_latin1 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`);
    // node-postgres speaks UTF8; the server converts to LATIN1.
    await sql('dp_latin1', `CREATE SCHEMA "ñandú"; CREATE TABLE "ñandú"."café" (v text); INSERT INTO "ñandú"."café" VALUES ('é'), ('ü');
                            CREATE TABLE "Größe" (i int); INSERT INTO "Größe" SELECT generate_series(1, 5)`);
    const k = await backup('dp_latin1', folder, id.recipient);
    const tables = manifestOf(folder, k).tables;
    expect(tables).toEqual(expect.arrayContaining([
      { schema: 'ñandú', name: 'café', rows: 2 },
      { schema: 'public', name: 'Größe', rows: 5 },
    ]));
    await dropDb('dp_latin1_dst');
    const r = await run(['restore', k, '--from', folder, '--to', url('dp_latin1_dst'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('row counts match');
    expect(await snapshot('dp_latin1_dst')).toEqual(await snapshot('dp_latin1'));
  });

  it('SQL_ASCII: high bytes in names are kept byte-exact (\\xNN) in the manifest, restore finds every table', async () => {
    await dropDb('dp_sqlascii');
    await sql('postgres', `CREATE DATABASE dp_sqlascii TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'`);
    // A LATIN1 byte (0xE9, not valid UTF8) and UTF8 bytes (c3 af), both as raw bytes.
    psqlRaw(
      'dp_sqlascii',
      Buffer.concat([
        Buffer.from('CREATE TABLE "caf'), Buffer.from([0xe9]), Buffer.from('" (i int); INSERT INTO "caf'), Buffer.from([0xe9]), Buffer.from('" VALUES (1), (2), (3);\n'),
        Buffer.from('CREATE TABLE "na'), Buffer.from([0xc3, 0xaf]), Buffer.from('ve" (i int); INSERT INTO "na'), Buffer.from([0xc3, 0xaf]), Buffer.from('ve" VALUES (1);\n'),
        Buffer.from('CREATE SCHEMA "s'), Buffer.from([0xe9]), Buffer.from('"; CREATE TABLE "s'), Buffer.from([0xe9]), Buffer.from('".t (i int); INSERT INTO "s'), Buffer.from([0xe9]), Buffer.from('".t VALUES (7), (8);\n'),
      ]),
      'SQL_ASCII',
    );
    const k = await backup('dp_sqlascii', folder, id.recipient);
    const tables = manifestOf(folder, k).tables;
    expect(tables).toEqual(expect.arrayContaining([
      { schema: 'public', name: 'caf\\xe9', rows: 3 },
      { schema: 'public', name: 'na\\xc3\\xafve', rows: 1 },
      { schema: 's\\xe9', name: 't', rows: 2 },
    ]));
    await dropDb('dp_sqlascii_dst');
    const r = await run(['restore', k, '--from', folder, '--to', url('dp_sqlascii_dst'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('row counts match');
    expect(await dbState('dp_sqlascii_dst')).toMatchObject({ encoding: 'SQL_ASCII' });
    const hex = await sql<{ h: string }>('dp_sqlascii_dst', `SELECT encode(convert_to(relname::text, 'SQL_ASCII'), 'hex') AS h FROM pg_class WHERE relname LIKE 'caf%' OR relname LIKE 'na%ve'  ORDER BY 1`);
    expect(hex.map((x) => x.h)).toEqual(['636166e9', '6e61c3af7665']);
    // verify --restore-into makes its scratch database like the source (a UTF8 one refuses these bytes).
    const v = await run(['verify', k, '--from', folder, '--restore-into', url('postgres'), '--identity', id.file]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // --clean drops the target's schemas by their bytes too (a name the connection cannot spell).
    psqlRaw('dp_sqlascii_dst', Buffer.concat([Buffer.from('INSERT INTO "s'), Buffer.from([0xe9]), Buffer.from('".t VALUES (9);\n')]), 'SQL_ASCII');
    const c = await run(['restore', k, '--from', folder, '--to', url('dp_sqlascii_dst'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(c.code, c.stderr).toBe(0);
    expect(await rawSnapshot('dp_sqlascii_dst')).toEqual(await rawSnapshot('dp_sqlascii'));
    expect(await rawSnapshot('dp_sqlascii_dst')).toHaveLength(3);
  });

  it('the row-count check finds tables by the bytes of their names (countRows)', async () => {
    const ac = new AbortController();
    const sa = await countRows(connFromUrl(url('dp_sqlascii')), [
      { schema: 'public', name: 'caf\\xe9' },
      { schema: 'public', name: 'na\\xc3\\xafve' },
      { schema: 'public', name: 'café' },
    ], ac.signal);
    expect(sa.get(tableKey('public', 'caf\\xe9'))).toBe(3);
    expect(sa.get(tableKey('public', 'na\\xc3\\xafve'))).toBe(1);
    expect(sa.get(tableKey('public', 'café'))).toBe(null);
    const l1 = await countRows(connFromUrl(url('dp_latin1')), [{ schema: 'ñandú', name: 'café' }, { schema: 'public', name: 'Größe' }], ac.signal);
    expect(l1.get(tableKey('ñandú', 'café'))).toBe(2);
    expect(l1.get(tableKey('public', 'Größe'))).toBe(5);
  });
});

describe('_globals with a tablespace', () => {
  /** An empty directory the server may use as a tablespace location. */
  function tsDir(): string {
    const d = tmp('pgbackup-ts-');
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(d, uid, gid);
    }
    return d;
  }
  async function tsState(name: string) {
    return sql(
      'postgres',
      `SELECT spcname, pg_get_userbyid(spcowner) AS owner, spcacl::text AS acl, spcoptions::text AS options,
              pg_tablespace_location(oid) AS location, shobj_description(oid, 'pg_tablespace') AS comment
         FROM pg_tablespace WHERE spcname = $1`,
      [name],
    );
  }
  function withTrailingCleanup(loc: string): void {
    rmSync(loc, { recursive: true, force: true });
  }

  it('a missing tablespace is created before the transaction; its owner, ACL, options and comment are applied in it; failures leave nothing', async () => {
    const loc = tsDir();
    await ensureRole('dp_tsowner');
    await ensureRole('dp_reader');
    await sql('postgres', `DROP TABLESPACE IF EXISTS dp_ts`);
    await sql('postgres', `CREATE TABLESPACE dp_ts OWNER dp_tsowner LOCATION '${loc}'`);
    await sql('postgres', `ALTER TABLESPACE dp_ts SET (random_page_cost = 3)`);
    await sql('postgres', `GRANT CREATE ON TABLESPACE dp_ts TO dp_reader`);
    await sql('postgres', `COMMENT ON TABLESPACE dp_ts IS 'fast disk'`);
    const before = await tsState('dp_ts');
    expect(before).toHaveLength(1);
    const out = tmp();
    const b = await run(['backup', '--database', url('postgres'), '--to', out, '--recipient', id.recipient, '--globals']);
    expect(b.code, b.stderr).toBe(0);
    const g = b.stdout.trim().split('\n').find((k) => k.startsWith('_globals/'))!;
    await sql('postgres', `DROP TABLESPACE dp_ts`);
    try {
      // Its location is gone: exit 6 naming it, nothing created.
      withTrailingCleanup(loc);
      const r1 = await run(['restore', g, '--from', out, '--to', url('postgres'), '--identity', id.file]);
      expect(r1.code, r1.stderr).toBe(6);
      expect(r1.stderr).toContain(loc);
      expect(r1.stderr).toContain('does not exist');
      expect(await tsState('dp_ts')).toEqual([]);

      // psql fails after the tablespace was created: it is dropped again.
      mkdirSync(loc);
      if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', loc]);
      const bad = fakeBinDir({ psql: 'cat > /dev/null; echo "psql: simulated failure" >&2; exit 3' });
      const r2 = await run(['restore', g, '--from', out, '--to', url('postgres'), '--identity', id.file], { env: baseEnv({ PGBACKUP_PG_BINDIR: bad }) });
      expect(r2.code, r2.stderr).toBe(6);
      expect(r2.stderr).toContain('dropped the tablespace it had created');
      expect(await tsState('dp_ts')).toEqual([]);

      const r3 = await run(['restore', g, '--from', out, '--to', url('postgres'), '--identity', id.file]);
      expect(r3.code, r3.stderr).toBe(0);
      expect(await tsState('dp_ts')).toEqual(before);

      // Already there (the old workaround: made by hand first): it stays, the restore passes.
      const r4 = await run(['restore', g, '--from', out, '--to', url('postgres'), '--identity', id.file]);
      expect(r4.code, r4.stderr).toBe(0);
      expect(await tsState('dp_ts')).toEqual(before);
    } finally {
      await sql('postgres', `DROP TABLESPACE IF EXISTS dp_ts`);
    }
  });

  it('tablespacePlan reads pg_dumpall\'s CREATE TABLESPACE statements', () => {
    const plan = tablespacePlan(`SET x = 1;\nCREATE TABLESPACE "Odd ""ts""" OWNER "r ""1""" LOCATION '/srv/it''s';\nCREATE TABLESPACE plain OWNER postgres LOCATION E'/srv/back\\\\slash';\nALTER TABLESPACE plain SET (seq_page_cost='2');\n`);
    expect(plan.map((p) => [p.name, p.location])).toEqual([
      ['Odd "ts"', "/srv/it's"],
      ['plain', '/srv/back\\slash'],
    ]);
    expect(plan[0]!.ownerSql).toBe('"r ""1"""');
  });
});

describe('servers 14 and 17', () => {
  const bin14 = join(ROOT, 'node_modules/pg14/native/bin');
  const bin17 = join(ROOT, 'node_modules/pg17/native/bin');

  it('properties are read on 17 (builtin provider, datlocale) and 14; --create into 14 sets what 14 has and refuses ICU with exit 2', async () => {
    for (const b of [bin14, bin17]) {
      if (!existsSync(join(b, 'postgres'))) throw new Error(`${b}/postgres is missing: npm install the pg14/pg17 dev dependencies`);
    }
    const [c14, c17] = await Promise.all([startCluster({ binDir: bin14 }), startCluster({ binDir: bin17 })]);
    try {
      const ac = new AbortController();
      const q = async (c: { port: number; password: string }, db: string, text: string) => {
        const cl = new pg.Client({ host: '127.0.0.1', port: c.port, user: 'postgres', password: c.password, database: db });
        await cl.connect();
        try {
          return (await cl.query(text)).rows;
        } finally {
          await cl.end();
        }
      };
      await q(c17, 'postgres', `CREATE DATABASE b17 TEMPLATE template0 LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'`);
      expect(await databaseProperties(connFromUrl(c17.url('b17')), ac.signal)).toMatchObject({ encoding: 'UTF8', localeProvider: 'builtin', locale: 'C.UTF-8' });
      await q(c14, 'postgres', `CREATE DATABASE l14 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`);
      await q(c14, 'postgres', `ALTER DATABASE l14 SET work_mem = '5MB'`);
      expect(await databaseProperties(connFromUrl(c14.url('l14')), ac.signal)).toMatchObject({ encoding: 'LATIN1', localeProvider: 'libc', locale: null, settings: [{ role: null, name: 'work_mem', value: '5MB' }] });

      // The LATIN1 source (owner, ACL, settings) into 14: roles it lacks are warnings.
      const r = await run(['restore', key, '--from', folder, '--to', c14.url('r14'), '--create', '--identity', id.file]);
      expect(r.code, r.stderr).toBe(0);
      expect(await q(c14, 'postgres', `SELECT pg_encoding_to_char(encoding) AS e, datcollate AS c, shobj_description(oid, 'pg_database') AS comment, datconnlimit AS l FROM pg_database WHERE datname = 'r14'`)).toEqual([
        { e: 'LATIN1', c: 'C', comment: "the source's comment", l: 17 },
      ]);
      expect(await q(c14, 'r14', `SELECT id, v FROM t ORDER BY id`)).toEqual([{ id: 1, v: 'crème' }, { id: 2, v: 'brûlée' }, { id: 3, v: null }]);

      // An ICU source cannot be made on 14: exit 2, nothing created.
      const k = await backup('dp_icu', folder, id.recipient);
      const r2 = await run(['restore', k, '--from', folder, '--to', c14.url('icu14'), '--create', '--identity', id.file]);
      expect(r2.code, r2.stderr).toBe(2);
      expect(r2.stderr).toContain('ICU');
      expect(await q(c14, 'postgres', `SELECT 1 FROM pg_database WHERE datname = 'icu14'`)).toEqual([]);
    } finally {
      await Promise.all([c14.stop(), c17.stop()]);
    }
  });
});
