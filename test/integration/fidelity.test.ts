// Fidelity: what pg_dump | psql restores, pgbackup restores identically and atomically.
// Each case is one that failed before the statement-aware reader (issue: fidelity).
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, readdirSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { PG, run, url, tmp, createDb, dropDb, sql, psqlEnv, newIdentity, snapshot } from './helpers.js';

let dir: string;
let id: { file: string; recipient: string };

/** pg_dump's plain output of a database, without the per-run \restrict key. */
function dumpOf(db: string, extra: string[] = []): string {
  const out = execFileSync(join(PG().binDir, 'pg_dump'), ['--format=plain', ...extra, db], { env: psqlEnv(db), maxBuffer: 1 << 28 }).toString('latin1');
  return out
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join('\n');
}

/** Large objects of a database: oid -> md5 of the contents. */
async function largeObjects(db: string): Promise<Record<string, string>> {
  const rows = await sql<{ oid: string; h: string }>(db, `SELECT oid::text AS oid, md5(lo_get(oid)) AS h FROM pg_largeobject_metadata ORDER BY oid`);
  return Object.fromEntries(rows.map((r) => [r.oid, r.h]));
}

/** Back up `db` to a fresh folder; returns the folder and the key. */
async function backupTo(db: string, extra: string[] = []): Promise<{ folder: string; key: string }> {
  const folder = tmp();
  const r = await run(['backup', '--database', url(db), '--to', folder, '--recipient', id.recipient, ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return { folder, key: r.stdout.trim() };
}

async function restoreNew(b: { folder: string; key: string }, dest: string, extra: string[] = []) {
  await dropDb(dest);
  return run(['restore', b.key, '--from', b.folder, '--to', url(dest), '--create', '--identity', id.file, ...extra]);
}

beforeAll(async () => {
  dir = tmp();
  id = await newIdentity(dir);
});

describe('fidelity', () => {
  it('a view split by pg_dump (GROUP BY a primary key) and a commented domain constraint restore identically, by every path', async () => {
    await createDb('fd_split');
    await sql(
      'fd_split',
      `CREATE SCHEMA s; CREATE TABLE s.o (id int PRIMARY KEY, v int); CREATE VIEW s.v AS SELECT o.id, o.v FROM s.o GROUP BY o.id;
       INSERT INTO s.o SELECT g, g * 2 FROM generate_series(1, 50) g;
       CREATE DOMAIN public.dom AS int CONSTRAINT inv_ck CHECK (VALUE > 0);
       COMMENT ON CONSTRAINT inv_ck ON DOMAIN public.dom IS 'a comment';`,
    );
    const b = await backupTo('fd_split');
    // --create into a new database
    const r = await restoreNew(b, 'fd_split_new');
    expect(r.code, r.stderr).toBe(0);
    expect(dumpOf('fd_split_new')).toBe(dumpOf('fd_split'));
    // --clean over an existing database
    await createDb('fd_split_clean');
    await sql('fd_split_clean', `CREATE TABLE other (x int); INSERT INTO other VALUES (1)`);
    const c = await run(['restore', b.key, '--from', b.folder, '--to', url('fd_split_clean'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(c.code, c.stderr).toBe(0);
    expect(dumpOf('fd_split_clean')).toBe(dumpOf('fd_split'));
    // verify --restore-into
    const v = await run(['verify', b.key, '--from', b.folder, '--identity', id.file, '--restore-into', url('postgres')]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // The manual pipeline of the README: age -d | gunzip | psql -1 into an empty database.
    await createDb('fd_split_manual');
    execFileSync('sh', ['-c', `age -d -i "${id.file}" "${join(b.folder, b.key)}" | gunzip | "${PG().binDir}/psql" -X -q -v ON_ERROR_STOP=1 -1`], { env: psqlEnv('fd_split_manual') });
    expect(dumpOf('fd_split_manual')).toBe(dumpOf('fd_split'));
  });

  it('dumps made with pg_dump --clean --if-exists (the old cron routine, older backups) restore into an empty database', async () => {
    const file = join(dir, 'old-clean.sql');
    writeFileSync(file, execFileSync(join(PG().binDir, 'pg_dump'), ['--clean', '--if-exists', 'fd_split'], { env: psqlEnv('fd_split') }));
    expect(readFileSync(file, 'utf8')).toMatch(/CREATE OR REPLACE VIEW s.v AS\n[\s\S]*DROP SCHEMA IF EXISTS s;/);
    await dropDb('fd_oldclean');
    const r = await run(['restore', file, '--to', url('fd_oldclean'), '--create']);
    expect(r.code, r.stderr).toBe(0);
    expect(dumpOf('fd_oldclean')).toBe(dumpOf('fd_split'));
  });

  it('large objects load inside the one transaction: a failure after them leaves the target exactly as it was', async () => {
    await sql('postgres', `DO $$ BEGIN CREATE ROLE fd_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    await createDb('fd_lo');
    await sql(
      'fd_lo',
      `CREATE TABLE t (id int PRIMARY KEY, doc oid); SELECT lo_from_bytea(0, convert_to('large object ' || g, 'UTF8')) FROM generate_series(1, 5) g;
       INSERT INTO t SELECT row_number() OVER (), oid FROM pg_largeobject_metadata; GRANT SELECT ON t TO fd_reader;`,
    );
    const b = await backupTo('fd_lo');
    const ok = await restoreNew(b, 'fd_lo_new');
    expect(ok.code, ok.stderr).toBe(0);
    expect(await largeObjects('fd_lo_new')).toEqual(await largeObjects('fd_lo'));
    expect(dumpOf('fd_lo_new')).toBe(dumpOf('fd_lo'));

    // The GRANT comes after the large objects' data; without the role it fails.
    await createDb('fd_lo_target');
    await sql('fd_lo_target', `CREATE TABLE keep (v text); INSERT INTO keep VALUES ('precious'); SELECT lo_from_bytea(4242, 'mine')`);
    const before = { snap: await snapshot('fd_lo_target'), lo: await largeObjects('fd_lo_target') };
    await sql('postgres', `DROP OWNED BY fd_reader CASCADE`);
    for (const db of ['fd_lo', 'fd_lo_new']) await sql(db, `REVOKE ALL ON t FROM fd_reader`).catch(() => undefined);
    await sql('postgres', `DROP ROLE fd_reader`);
    const r = await run(['restore', b.key, '--from', b.folder, '--to', url('fd_lo_target'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain('fd_reader');
    expect(await snapshot('fd_lo_target')).toEqual(before.snap);
    expect(await largeObjects('fd_lo_target')).toEqual(before.lo);

    // A damaged last age chunk: exit 5, the target as it was, large objects included.
    const cut = tmp();
    const key = b.key;
    execFileSync('mkdir', ['-p', join(cut, key, '..')]);
    const bytes = readFileSync(join(b.folder, key));
    const damaged = Buffer.from(bytes);
    damaged[damaged.length - 5]! ^= 0xff;
    writeFileSync(join(cut, key), damaged);
    await sql('postgres', `CREATE ROLE fd_reader`);
    const d = await run(['restore', join(cut, key), '--to', url('fd_lo_target'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(d.code, d.stderr).toBe(5);
    expect(await snapshot('fd_lo_target')).toEqual(before.snap);
    expect(await largeObjects('fd_lo_target')).toEqual(before.lo);
    await sql('postgres', `DROP ROLE fd_reader`);
  });

  it('rewrites never touch comments, bodies or rows: transaction_timeout, --no-owner, a table name with a newline', async () => {
    await createDb('fd_lines');
    await sql(
      'fd_lines',
      `CREATE TABLE t (id int);
       COMMENT ON TABLE t IS E'first line\\nSET transaction_timeout = 0;\\nALTER TABLE t OWNER TO nobody;\\nlast line';
       CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $body$
BEGIN
  RETURN 'ALTER TABLE public.t OWNER TO x;';
END
$body$;
       CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $q$
ALTER TABLE public.t OWNER TO x;
SELECT 'y'
$q$;
       CREATE TABLE "line
break" (id int, v text);
       INSERT INTO "line
break" VALUES (1, 'one'), (2, E'two\\nlines'), (3, 'three');`,
    );
    const b = await backupTo('fd_lines');
    const r = await restoreNew(b, 'fd_lines_new', ['--no-owner']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('row counts match');
    // The server here predates transaction_timeout and psql's rewrite ran; pg_dump of both sides is equal.
    expect(dumpOf('fd_lines_new')).toBe(dumpOf('fd_lines'));
    const c = await sql<{ d: string }>('fd_lines_new', `SELECT obj_description('t'::regclass, 'pg_class') AS d`);
    expect(c[0]!.d).toBe('first line\nSET transaction_timeout = 0;\nALTER TABLE t OWNER TO nobody;\nlast line');
    expect((await sql('fd_lines_new', `SELECT * FROM "line\nbreak" ORDER BY id`)).length).toBe(3);
    const manifest = JSON.parse(readFileSync(join(b.folder, b.key + '.json'), 'utf8'));
    expect(manifest.tables).toContainEqual({ schema: 'public', name: 'line\nbreak', rows: 3 });
  });

  it('nothing incomplete commits: an empty .sql, a dump cut after a COPY block, a .sql.gz cut at a member boundary with its manifest', async () => {
    await createDb('fd_inc');
    await sql('fd_inc', `CREATE TABLE keep (v text); INSERT INTO keep VALUES ('precious')`);
    const before = await snapshot('fd_inc');

    const empty = join(dir, 'empty.sql');
    writeFileSync(empty, '');
    const e = await run(['restore', empty, '--to', url('fd_inc'), '--clean', '--yes', '--no-safety-backup']);
    expect(e.code, e.stderr).toBe(7);
    expect(e.stderr).toContain('completion marker');
    expect(await snapshot('fd_inc')).toEqual(before);

    // A plain dump cut right after its first COPY block: no primary key, no marker.
    const full = dumpOf('fd_split');
    const cutAt = full.indexOf('\\.\n', full.indexOf('COPY s.o')) + 3;
    const cut = join(dir, 'cut.sql');
    writeFileSync(cut, full.slice(0, cutAt));
    const c = await run(['restore', cut, '--to', url('fd_inc'), '--clean', '--yes', '--no-safety-backup']);
    expect(c.code, c.stderr).toBe(7);
    expect(await snapshot('fd_inc')).toEqual(before);

    // An unencrypted .sql.gz (one gzip member per part) cut at a member boundary, with its manifest.
    const folder = tmp();
    const bk = await run(['backup', '--database', url('fd_split'), '--to', folder, '--no-encryption']);
    expect(bk.code, bk.stderr).toBe(0);
    const key = bk.stdout.trim();
    const path = join(folder, key);
    const whole = readFileSync(path);
    const member = gzipSync(Buffer.from('SELECT 1;\n'));
    // Replace the object by a shorter, valid gzip stream: its size differs from the manifest's.
    writeFileSync(path, member);
    const g = await run(['restore', key, '--from', folder, '--to', url('fd_inc'), '--clean', '--yes', '--no-safety-backup']);
    expect(g.code, g.stderr).toBe(7);
    expect(g.stderr).toMatch(/manifest says/);
    expect(await snapshot('fd_inc')).toEqual(before);
    writeFileSync(path, whole);
    expect(statSync(path).size).toBe(whole.length);
    void readdirSync;
    void truncateSync;
  });

  it('--clean over a database that holds large objects (the same ones, from an earlier restore) replaces them', async () => {
    await createDb('fd_lo_again');
    await sql('fd_lo_again', `CREATE TABLE t (id int); SELECT lo_from_bytea(0, 'first'); SELECT lo_from_bytea(0, 'second')`);
    const b = await backupTo('fd_lo_again');
    await sql('fd_lo_again', `SELECT lo_from_bytea(0, 'made after the backup')`);
    const r = await run(['restore', b.key, '--from', b.folder, '--to', url('fd_lo_again'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    const los = Object.values(await largeObjects('fd_lo_again'));
    expect(los.sort()).toEqual([createHash('md5').update('first').digest('hex'), createHash('md5').update('second').digest('hex')].sort());
  });
});
