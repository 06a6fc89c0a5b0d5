// restore --jobs N: the same database as a serial restore, atomic per database.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { PG, run, url, tmp, createDb, dropDb, sql, psqlEnv, newIdentity, snapshot } from './helpers.js';

let id: { file: string; recipient: string };
let folder: string;
let key: string;
const SRC = 'pj_src';

/**
 * pg_dump of a database, without the per-run \restrict key, with each COPY block's rows sorted:
 * chunks of one table load concurrently, so its rows' physical order (which pg_dump follows)
 * differs from a serial load's; the rows themselves must not.
 */
function dumpOf(db: string): string {
  const lines = execFileSync(join(PG().binDir, 'pg_dump'), ['--format=plain', db], { env: psqlEnv(db), maxBuffer: 1 << 28 })
    .toString('latin1')
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l));
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    out.push(lines[i]!);
    if (/^COPY .* FROM stdin;$/.test(lines[i]!)) {
      const rows: string[] = [];
      while (lines[i + 1] !== '\\.') rows.push(lines[++i]!);
      for (const r of rows.sort()) out.push(r);
    }
  }
  return out.join('\n');
}

/** Equal dumps, or a short account of where they differ (a full diff of megabytes would take minutes). */
function expectSameDump(a: string, b: string): void {
  if (a === b) return;
  const la = a.split('\n');
  const lb = b.split('\n');
  const at = la.findIndex((l, i) => l !== lb[i]);
  expect.fail(`dumps differ (${la.length} vs ${lb.length} lines) from line ${at + 1}:\n< ${la.slice(at, at + 5).join('\n< ')}\n> ${lb.slice(at, at + 5).join('\n> ')}`);
}

async function databases(): Promise<string[]> {
  return (await sql<{ d: string }>('postgres', `SELECT datname AS d FROM pg_database ORDER BY 1`)).map((r) => r.d);
}

/**
 * The staging database a restore's log names, still on the server or not. Only this run's: other
 * files' parallel restores share the cluster and may hold staging databases of their own right now.
 */
async function stagingLeft(stderr: string): Promise<string[]> {
  const line = stderr.split('\n').find((l) => l.includes('loading into a staging database'));
  const name = line ? /"staging":"(pgbackup_staging_[^"]+)"/.exec(line)?.[1] : undefined;
  expect(name, `no staging database named in:\n${stderr}`).toBeDefined();
  return (await databases()).filter((d) => d === name);
}

beforeAll(async () => {
  id = await newIdentity(tmp());
  await createDb(SRC);
  await sql(
    SRC,
    `CREATE SCHEMA app;
     CREATE TABLE app.customers (id int PRIMARY KEY, email text UNIQUE, name text);
     CREATE TABLE app.orders (id bigint PRIMARY KEY, customer_id int REFERENCES app.customers(id), amount numeric(12,2), note text);
     CREATE INDEX orders_customer ON app.orders (customer_id);
     CREATE INDEX orders_amount ON app.orders (amount);
     CREATE TABLE app.items (order_id bigint REFERENCES app.orders(id) DEFERRABLE INITIALLY DEFERRED, sku text, qty int);
     CREATE TABLE app.events (id bigint, at date NOT NULL, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
     CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
     CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
     CREATE INDEX events_what ON app.events (what);
     CREATE TABLE app.base (id int, v text);
     CREATE TABLE app.child (extra int) INHERITS (app.base);
     CREATE TABLE app.docs (id int PRIMARY KEY, body oid);
     CREATE MATERIALIZED VIEW app.totals AS SELECT customer_id, sum(amount) AS total FROM app.orders GROUP BY 1;
     CREATE UNIQUE INDEX totals_customer ON app.totals (customer_id);
     COMMENT ON INDEX app.orders_amount IS 'for reports';
     INSERT INTO app.customers SELECT g, 'c' || g || '@example.com', 'customer ' || g FROM generate_series(1, 5000) g;
     INSERT INTO app.orders SELECT g, 1 + g % 5000, (g % 10000) / 100.0, repeat('note ' || g, 8) FROM generate_series(1, 400000) g;
     INSERT INTO app.items SELECT 1 + g % 400000, 'SKU-' || g, g % 7 FROM generate_series(1, 20000) g;
     INSERT INTO app.events SELECT g, DATE '2024-01-01' + (g % 700), 'event ' || g FROM generate_series(1, 20000) g;
     INSERT INTO app.base VALUES (1, 'base'); INSERT INTO app.child VALUES (2, 'child', 3);
     INSERT INTO app.docs SELECT g, lo_from_bytea(0, convert_to(repeat('doc ' || g, 100), 'UTF8')) FROM generate_series(1, 20) g;
     REFRESH MATERIALIZED VIEW app.totals;`,
  );
  folder = tmp();
  const b = await run(['backup', '--database', url(SRC), '--to', folder, '--recipient', id.recipient]);
  expect(b.code, b.stderr).toBe(0);
  key = b.stdout.trim();
  // The serial restore is the reference.
  await dropDb('pj_serial');
  const s = await run(['restore', key, '--from', folder, '--to', url('pj_serial'), '--create', '--identity', id.file]);
  expect(s.code, s.stderr).toBe(0);
}, 300_000);

describe('restore --jobs', () => {
  it('into a new database: identical to the serial restore, long tables in chunks, post-data concurrently', async () => {
    await dropDb('pj_new');
    const r = await run(['restore', key, '--from', folder, '--to', url('pj_new'), '--create', '--jobs', '3', '--json', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.mismatches).toBe(0);
    expect(out.copyChunks).toBeGreaterThan(out.tables); // app.orders went in several chunks
    expectSameDump(dumpOf('pj_new'), dumpOf('pj_serial'));
    expectSameDump(dumpOf('pj_new'), dumpOf(SRC));
    const lo = await sql<{ n: number }>('pj_new', `SELECT count(*)::int AS n FROM pg_largeobject_metadata`);
    expect(lo[0]!.n).toBe(20);
  });

  it('over an existing database: a staging copy replaces it at the end; the old one is kept under the printed name', async () => {
    await createDb('pj_existing');
    await sql('pj_existing', `CREATE TABLE old_stuff (v text); INSERT INTO old_stuff VALUES ('was here')`);
    const before = await snapshot('pj_existing');
    const r = await run(['restore', key, '--from', folder, '--to', url('pj_existing'), '--clean', '--yes', '--jobs', '2', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expectSameDump(dumpOf('pj_existing'), dumpOf(SRC));
    const old = /kept as "([^"]+)"/.exec(r.stderr)![1]!;
    expect(await snapshot(old)).toEqual(before);
    await dropDb(old);
    expect(await stagingLeft(r.stderr)).toEqual([]);
  });

  it('a failure in any session leaves no new database, and an existing target exactly as it was', async () => {
    // A role the target cluster lacks: the GRANT fails after the data went in.
    await sql('postgres', `DO $$ BEGIN CREATE ROLE pj_gone; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    await createDb('pj_failsrc');
    await sql('pj_failsrc', `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000); GRANT SELECT ON t TO pj_gone`);
    const f = tmp();
    const b = await run(['backup', '--database', url('pj_failsrc'), '--to', f, '--recipient', id.recipient]);
    expect(b.code, b.stderr).toBe(0);
    await sql('pj_failsrc', `REVOKE ALL ON t FROM pj_gone`);
    await sql('postgres', `DROP ROLE pj_gone`);

    await dropDb('pj_fail_new');
    const r = await run(['restore', b.stdout.trim(), '--from', f, '--to', url('pj_fail_new'), '--create', '--jobs', '2', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain('pj_gone');
    expect(await databases()).not.toContain('pj_fail_new');

    await createDb('pj_fail_existing');
    await sql('pj_fail_existing', `CREATE TABLE keep (v text); INSERT INTO keep VALUES ('precious')`);
    const before = await snapshot('pj_fail_existing');
    const r2 = await run(['restore', b.stdout.trim(), '--from', f, '--to', url('pj_fail_existing'), '--clean', '--yes', '--jobs', '2', '--identity', id.file]);
    expect(r2.code, r2.stderr).toBe(6);
    expect(await snapshot('pj_fail_existing')).toEqual(before);
    expect(await stagingLeft(r2.stderr)).toEqual([]);
  });

  it('an interruption (SIGTERM) leaves no new database', async () => {
    await dropDb('pj_int');
    let pid = 0;
    const p = run(['restore', key, '--from', folder, '--to', url('pj_int'), '--create', '--jobs', '2', '--identity', id.file], {
      onSpawn: (x) => (pid = x),
      onStderr: (s) => {
        if (/created the target database/.test(s) && pid) setTimeout(() => process.kill(pid, 'SIGTERM'), 300);
      },
    });
    const r = await p;
    expect(r.code, r.stderr).toBe(143);
    expect(await databases()).not.toContain('pj_int');
  });

  it('a session on the target: the cut-over fails naming it (exit 6, target unchanged, copy dropped); --terminate-connections ends it', async () => {
    await createDb('pj_busy');
    await sql('pj_busy', `CREATE TABLE keep (v text); INSERT INTO keep VALUES ('precious')`);
    const before = await snapshot('pj_busy');
    const pg = (await import('pg')).default;
    const other = new pg.Client({ host: '127.0.0.1', port: PG().port, user: 'postgres', password: PG().password, database: 'pj_busy', application_name: 'busy-app' });
    await other.connect();
    other.on('error', () => undefined);
    try {
      const r = await run(['restore', key, '--from', folder, '--to', url('pj_busy'), '--clean', '--yes', '--jobs', '2', '--identity', id.file]);
      expect(r.code, r.stderr).toBe(6);
      expect(r.stderr).toContain('busy-app');
      expect(r.stderr).toContain('--terminate-connections');
      expect(await snapshot('pj_busy')).toEqual(before);
      expect(await stagingLeft(r.stderr)).toEqual([]);
      const r2 = await run(['restore', key, '--from', folder, '--to', url('pj_busy'), '--clean', '--yes', '--jobs', '2', '--terminate-connections', '--identity', id.file]);
      expect(r2.code, r2.stderr).toBe(0);
      expectSameDump(dumpOf('pj_busy'), dumpOf(SRC));
      await dropDb(/kept as "([^"]+)"/.exec(r2.stderr)![1]!);
    } finally {
      await other.end().catch(() => undefined);
    }
  });

  it('a LATIN1 database with non-ASCII names: the same names and rows, into a new database and over an existing one', async () => {
    await dropDb('pj_latin1');
    await sql('postgres', `CREATE DATABASE pj_latin1 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`);
    await sql('pj_latin1', `CREATE SCHEMA "Größe"; CREATE TABLE "Größe".tää (x int PRIMARY KEY, ñ text); INSERT INTO "Größe".tää VALUES (1, 'olé'), (2, 'ÿ');
      CREATE TABLE café (id int); INSERT INTO café VALUES (1); COMMENT ON TABLE café IS 'crème'`);
    const f = tmp();
    const b = await run(['backup', '--database', url('pj_latin1'), '--to', f, '--recipient', id.recipient]);
    expect(b.code, b.stderr).toBe(0);
    await dropDb('pj_latin1_new');
    const r = await run(['restore', b.stdout.trim(), '--from', f, '--to', url('pj_latin1_new'), '--create', '--jobs', '2', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expectSameDump(dumpOf('pj_latin1_new'), dumpOf('pj_latin1'));
    const r2 = await run(['restore', b.stdout.trim(), '--from', f, '--to', url('pj_latin1_new'), '--clean', '--yes', '--jobs', '2', '--identity', id.file]);
    expect(r2.code, r2.stderr).toBe(0);
    expectSameDump(dumpOf('pj_latin1_new'), dumpOf('pj_latin1'));
    await dropDb(/kept as "([^"]+)"/.exec(r2.stderr)![1]!);
  });
});
