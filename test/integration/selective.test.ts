// Selective restore (--table, --schema, --exclude-table), --list's text form, and the report of
// staging databases left by killed parallel restores.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PG, url, tmp, run, createDb, dropDb, sql, newIdentity, psqlEnv, filesUnder, onTty, baseEnv, needCommand } from './helpers.js';

let id: { file: string; recipient: string };

beforeAll(async () => {
  id = await newIdentity(tmp());
}, 60_000);

async function backupOf(db: string): Promise<{ key: string; folder: string }> {
  const folder = tmp();
  const b = await run(['backup', '--database', url(db), '--to', folder, '--recipient', id.recipient]);
  expect(b.code, b.stderr).toBe(0);
  return { key: b.stdout.trim(), folder };
}

async function databases(): Promise<string[]> {
  return (await sql<{ d: string }>('postgres', `SELECT datname AS d FROM pg_database ORDER BY 1`)).map((r) => r.d);
}

describe('restore --list, text form', () => {
  it('one tab-separated line per entry: names with spaces, dots, quotes and tabs stay one field each', async () => {
    await createDb('sel_list');
    await sql('sel_list', `CREATE SCHEMA "my schema"; CREATE TABLE "my schema"."a b.""c""" (x int); INSERT INTO "my schema"."a b.""c""" VALUES (1), (2);
      CREATE TABLE "tab\there" (y int)`);
    const { key, folder } = await backupOf('sel_list');
    const r = await run(['restore', key, '--from', folder, '--list', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => l.split('\t'));
    for (const l of lines) expect(l, l.join('|')).toHaveLength(5);
    expect(lines).toContainEqual(['TABLE DATA', 'my schema', 'a b."c"', 'postgres', '2']);
    expect(lines).toContainEqual(['TABLE', 'my schema', 'a b."c"', 'postgres', '']);
    expect(lines).toContainEqual(['TABLE', 'public', 'tab\\there', 'postgres', '']);
    expect(lines).toContainEqual(['SCHEMA', '', 'my schema', 'postgres', '']);
  });
});

describe('staging databases left by a killed parallel restore', () => {
  it('are named in a warning with how to drop them, and never dropped by the restore', async () => {
    await createDb('sel_stage_src');
    await sql('sel_stage_src', `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 200000) g`);
    const { key, folder } = await backupOf('sel_stage_src');
    await createDb('sel_stage_tgt');
    await sql('sel_stage_tgt', `CREATE TABLE keep (v text)`);
    let pid = 0;
    const killed = await run(['restore', key, '--from', folder, '--to', url('sel_stage_tgt'), '--clean', '--yes', '--jobs', '2', '--identity', id.file], {
      onSpawn: (x) => (pid = x),
      onStderr: (s) => {
        if (/loading into a staging database/.test(s) && pid) process.kill(pid, 'SIGKILL');
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    // This run's staging database, as its log named it (other files' restores share the cluster).
    const named = /"staging":"(pgbackup_staging_[^"]+)"/.exec(killed.stderr)?.[1];
    expect(named, killed.stderr).toBeDefined();
    const left = (await databases()).filter((d) => d === named);
    expect(left).toHaveLength(1);
    // Its psql sessions end once their input closes.
    for (let i = 0; i < 100 && (await sql('postgres', `SELECT 1 FROM pg_stat_activity WHERE datname = $1`, [left[0]])).length; i++) await new Promise((r) => setTimeout(r, 100));
    const r = await run(['restore', key, '--from', folder, '--to', url('sel_stage_tgt'), '--clean', '--yes', '--jobs', '2', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(left[0]);
    expect(r.stderr).toContain('DROP DATABASE');
    expect(await databases()).toContain(left[0]);
    await dropDb(left[0]!);
    await dropDb(/kept as "([^"]+)"/.exec(r.stderr)![1]!);
  });
});

/** pg_dump of a database (with extra options), without comments, blank lines and the per-run \restrict key. */
function dump(db: string, ...opts: string[]): string {
  return execFileSync(join(PG().binDir, 'pg_dump'), ['--format=plain', ...opts, db], { env: psqlEnv(db), maxBuffer: 1 << 26 })
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('--') && !/^\\(un)?restrict /.test(l))
    .join('\n');
}

async function tablesOf(db: string): Promise<string[]> {
  return (
    await sql<{ t: string }>(
      db,
      `SELECT n.nspname || '.' || c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') ORDER BY 1`,
    )
  ).map((r) => r.t);
}

const SRC = 'sel_src';
const ODD = '"we. ird"."t ""q"". x"';
let key: string;
let folder: string;

describe('selective restore', () => {
  beforeAll(async () => {
    await createDb(SRC);
    await sql(
      SRC,
      `CREATE SCHEMA app;
       CREATE TABLE app.customers (id serial PRIMARY KEY, name text);
       CREATE TABLE app.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id int REFERENCES app.customers(id), note text DEFAULT 'n', total numeric CHECK (total >= 0));
       CREATE INDEX orders_customer ON app.orders (customer_id);
       CREATE TABLE app.items (order_id bigint REFERENCES app.orders(id), sku text);
       COMMENT ON TABLE app.orders IS 'all orders'; COMMENT ON COLUMN app.orders.note IS 'a note';
       GRANT SELECT ON app.orders TO PUBLIC; GRANT SELECT (name) ON app.customers TO PUBLIC;
       ALTER TABLE app.orders ENABLE ROW LEVEL SECURITY; CREATE POLICY mine ON app.orders USING (true);
       CREATE TRIGGER same BEFORE UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
       CREATE RULE gone AS ON DELETE TO app.orders DO ALSO NOTIFY orders_deleted;
       CREATE TABLE app.events (id int, at date, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
       CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
       CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
       CREATE INDEX events_what ON app.events (what);
       CREATE SCHEMA "we. ird";
       CREATE TABLE ${ODD} (id int PRIMARY KEY, v text);
       COMMENT ON TABLE ${ODD} IS 'odd';
       CREATE SCHEMA rep;
       CREATE TYPE rep.mood AS ENUM ('ok', 'bad');
       CREATE FUNCTION rep.twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
       CREATE TABLE rep.a (id int PRIMARY KEY, m rep.mood, d int DEFAULT rep.twice(21));
       CREATE VIEW rep.v AS SELECT id, m FROM rep.a;
       CREATE SEQUENCE rep.free_seq START 100;
       CREATE TABLE rep.big (id int PRIMARY KEY, a_id int REFERENCES rep.a(id));
       INSERT INTO app.customers (name) SELECT 'c' || g FROM generate_series(1, 50) g;
       INSERT INTO app.orders (customer_id, note, total) SELECT 1 + g % 50, 'note ' || g, g FROM generate_series(1, 300) g;
       INSERT INTO app.items SELECT 1 + g % 300, 'sku' || g FROM generate_series(1, 400) g;
       INSERT INTO app.events SELECT g, DATE '2024-06-01' + g, 'e' || g FROM generate_series(1, 400) g;
       INSERT INTO ${ODD} VALUES (1, 'one'), (2, 'two');
       INSERT INTO rep.a VALUES (1, 'ok'), (2, 'bad');
       SELECT nextval('rep.free_seq');
       INSERT INTO rep.big SELECT g, 1 + g % 2 FROM generate_series(1, 100) g;`,
    );
    ({ key, folder } = await backupOf(SRC));
  }, 120_000);

  it('--table into a new database: the table and everything of its own, as pg_dump -t shows it; a foreign key to a table not restored is left out and named', async () => {
    await dropDb('sel_new');
    const r = await run(['restore', key, '--from', folder, '--to', url('sel_new'), '--create', '--table', 'app.orders', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/left out: foreign key "orders_customer_id_fkey" of app\.orders: it references app\.customers/);
    expect(await tablesOf('sel_new')).toEqual(['app.orders']);
    const fk = /\nALTER TABLE ONLY app\.orders\n {4}ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY[^\n]*/;
    const want = dump(SRC, '-t', 'app.orders');
    expect(want).toMatch(fk);
    expect(dump('sel_new', '-t', 'app.orders')).toBe(want.replace(fk, ''));
    // The sequence went on where the source's was.
    expect((await sql<{ id: string }>('sel_new', `INSERT INTO app.orders (total) VALUES (1) RETURNING id`))[0]!.id).toBe('301');
  });

  it('--table over an existing database: only that table is replaced (with --clean), foreign keys in and out keep working, everything else untouched', async () => {
    await dropDb('sel_tgt');
    const full = await run(['restore', key, '--from', folder, '--to', url('sel_tgt'), '--create', '--identity', id.file]);
    expect(full.code, full.stderr).toBe(0);
    // The target moved on since the backup.
    await sql('sel_tgt', `DELETE FROM app.items WHERE order_id > 250; DELETE FROM app.orders WHERE id > 250; UPDATE app.orders SET note = 'changed';
      INSERT INTO app.customers (name) VALUES ('new'); CREATE TABLE public.other (x int); INSERT INTO public.other VALUES (7)`);
    const rest = dump('sel_tgt', '-T', 'app.orders');
    // Without --clean: refused, nothing changed.
    const no = await run(['restore', key, '--from', folder, '--to', url('sel_tgt'), '--table', 'app.orders', '--identity', id.file]);
    expect(no.code, no.stderr).toBe(2);
    expect(no.stderr).toContain('--clean');
    const r = await run(['restore', key, '--from', folder, '--to', url('sel_tgt'), '--table', 'app.orders', '--clean', '--yes', '--json', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.replaced).toEqual(['app.orders']);
    expect(out.foreignKeysRecreated).toBe(1);
    expect(out.skipped).toEqual([]);
    expect(out.safetyBackup).toMatch(/^sel_tgt\//);
    expect(dump('sel_tgt', '-t', 'app.orders')).toBe(dump(SRC, '-t', 'app.orders'));
    expect(dump('sel_tgt', '-T', 'app.orders')).toBe(rest);
    // The incoming foreign key is there and enforced.
    await expect(sql('sel_tgt', `INSERT INTO app.items VALUES (999999, 'x')`)).rejects.toThrow(/foreign key/);
  });

  it('a view elsewhere that depends on a replaced table: refused before anything changes (exit 6, naming it)', async () => {
    await sql('sel_tgt', `CREATE VIEW public.order_notes AS SELECT id, note FROM app.orders`);
    const before = dump('sel_tgt');
    const safety = filesUnder(folder).length;
    const r = await run(['restore', key, '--from', folder, '--to', url('sel_tgt'), '--table', 'app.orders', '--clean', '--yes', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain('view public.order_notes');
    expect(r.stderr).not.toContain('_RETURN');
    expect(dump('sel_tgt')).toBe(before);
    expect(filesUnder(folder).length).toBe(safety); // no safety backup either
    await sql('sel_tgt', `DROP VIEW public.order_notes`);
  });

  it('a partitioned table comes with its partitions; --exclude-table leaves one out', async () => {
    await dropDb('sel_part');
    const r = await run(['restore', key, '--from', folder, '--to', url('sel_part'), '--create', '--table', 'app.events', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await tablesOf('sel_part')).toEqual(['app.events', 'app.events_2024', 'app.events_2025']);
    expect(dump('sel_part', '-t', 'app.events*')).toBe(dump(SRC, '-t', 'app.events*'));
    await dropDb('sel_part2');
    const r2 = await run(['restore', key, '--from', folder, '--to', url('sel_part2'), '--create', '--table', 'app.events', '--exclude-table', 'app.events_2025', '--identity', id.file]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(await tablesOf('sel_part2')).toEqual(['app.events', 'app.events_2024']);
    expect((await sql<{ n: number }>('sel_part2', `SELECT count(*)::int AS n FROM app.events`))[0]!.n).toBe(213);
  });

  it('a table whose schema the target lacks, named with a space, a dot and quotes: the schema is created, the rest untouched', async () => {
    await createDb('sel_odd');
    await sql('sel_odd', `CREATE TABLE keep (v text); INSERT INTO keep VALUES ('precious')`);
    const rest = dump('sel_odd');
    const r = await run(['restore', key, '--from', folder, '--to', url('sel_odd'), '--table', ODD, '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await tablesOf('sel_odd')).toEqual(['public.keep', 'we. ird.t "q". x']);
    expect(dump('sel_odd', '-t', ODD)).toBe(dump(SRC, '-t', ODD));
    expect(dump('sel_odd', '-T', ODD).replace(/\nCREATE SCHEMA "we\. ird";\nALTER SCHEMA "we\. ird" OWNER TO postgres;/, '')).toBe(rest);
  });

  it('--schema: the schema and everything in it (types, functions, views, sequences); over an existing one it is replaced whole, the rest untouched', async () => {
    await dropDb('sel_schema');
    const r = await run(['restore', key, '--from', folder, '--to', url('sel_schema'), '--create', '--schema', 'rep', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(dump('sel_schema', '-n', 'rep')).toBe(dump(SRC, '-n', 'rep'));
    expect(await tablesOf('sel_schema')).toEqual(['rep.a', 'rep.big']);
    // Over the full copy, where rep has changed and other schemas hold other things.
    await sql('sel_tgt', `INSERT INTO rep.a VALUES (3, 'ok'); CREATE TABLE rep.extra (x int); SELECT setval('rep.free_seq', 500); CREATE TYPE rep.more AS (x int)`);
    const rest = dump('sel_tgt', '-N', 'rep');
    const r2 = await run(['restore', key, '--from', folder, '--to', url('sel_tgt'), '--schema', 'rep', '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(dump('sel_tgt', '-n', 'rep')).toBe(dump(SRC, '-n', 'rep'));
    expect(dump('sel_tgt', '-N', 'rep')).toBe(rest);
  });

  it('--schema with --exclude-table: the excluded table stays out (into a new database)', async () => {
    await dropDb('sel_excl');
    const r = await run(['restore', key, '--from', folder, '--to', url('sel_excl'), '--create', '--schema', 'rep', '--exclude-table', 'rep.big', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await tablesOf('sel_excl')).toEqual(['rep.a']);
    expect(dump('sel_excl', '-n', 'rep')).toBe(dump(SRC, '-n', 'rep', '-T', 'rep.big'));
  });

  it('a damaged backup fails mid-way and leaves the target exactly as it was', async () => {
    const bad = tmp();
    const stored = join(folder, key);
    const copy = join(bad, key);
    execFileSync('mkdir', ['-p', join(copy, '..')]);
    const bytes = readFileSync(stored);
    bytes[bytes.length - 200]! ^= 0xff; // in the data, long after the pre-data
    writeFileSync(copy, bytes);
    writeFileSync(copy + '.json', readFileSync(stored + '.json'));
    const before = dump('sel_tgt');
    const r = await run(['restore', key, '--from', bad, '--to', url('sel_tgt'), '--table', 'app.orders', '--table', 'app.items', '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(5);
    expect(dump('sel_tgt')).toBe(before);
  });

  it('on a terminal, the prompt names what is replaced; "n" changes nothing', async () => {
    needCommand('script', 'bsdutils');
    const before = dump('sel_tgt');
    const r = await onTty(['restore', key, '--from', folder, '--to', url('sel_tgt'), '--table', 'app.orders', '--table', 'app.customers', '--clean', '--identity', id.file], 'n\n', baseEnv());
    expect(r.out).toMatch(/Replace: app\.customers, app\.orders|Replace: app\.orders, app\.customers/);
    expect(r.out).toMatch(/re-create 1 foreign key\(s\) of other tables/);
    expect(r.out).toMatch(/Replace these objects in database "sel_tgt" on 127\.0\.0\.1:\d+\? \[y\/N\]/);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toContain('not confirmed; nothing was changed');
    expect(dump('sel_tgt')).toBe(before);
  });

  it('bad input: a clear message and exit 2 before anything is touched', async () => {
    const before = dump('sel_tgt');
    const count = filesUnder(folder).length;
    const cases: Array<[string[], RegExp]> = [
      [['--table', 'orders'], /--table "orders": name the schema too/],
      [['--table', 'app.nosuch'], /--table "app.nosuch": no table in the backup matches it/],
      [['--schema', 'nosuch'], /--schema "nosuch": no schema in the backup matches it/],
      [['--table', 'app.orders', '--jobs', '2'], /--jobs does not go with it/],
      [['--exclude-table', 'app.orders'], /--exclude-table narrows what --table or --schema select/],
      [['--table', 'app."unclosed'], /unclosed double quote/],
    ];
    for (const [args, msg] of cases) {
      const r = await run(['restore', key, '--from', folder, '--to', url('sel_tgt'), '--clean', '--yes', ...args, '--identity', id.file]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(dump('sel_tgt')).toBe(before);
    expect(filesUnder(folder).length).toBe(count);
  });
});
