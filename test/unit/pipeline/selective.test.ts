import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DumpReader, HOLD_LIMIT } from '../../../src/pipeline/dumpreader.js';
import { classify, tokens } from '../../../src/pipeline/selective.js';
import { matchesTable, parseQualifiedPattern, parseSchemaPattern } from '../../../src/model/selection.js';

const q = (t: string) => {
  const p = parseQualifiedPattern('--table', t);
  if (typeof p === 'string') throw new Error(p);
  return p;
};

describe('selection patterns (as pg_dump reads them)', () => {
  it('unquoted parts fold to lower case and take * and ?; quoted parts are literal', () => {
    expect(matchesTable(q('App.Orders'), 'app', 'orders')).toBe(true);
    expect(matchesTable(q('App.Orders'), 'App', 'Orders')).toBe(false);
    expect(matchesTable(q('"App"."Orders"'), 'App', 'Orders')).toBe(true);
    expect(matchesTable(q('app.ord*'), 'app', 'orders_2024')).toBe(true);
    expect(matchesTable(q('app.ord?rs'), 'app', 'orders')).toBe(true);
    expect(matchesTable(q('app."ord*"'), 'app', 'orders')).toBe(false);
    expect(matchesTable(q('app."ord*"'), 'app', 'ord*')).toBe(true);
    expect(matchesTable(q('"we. ird"."t ""q"". x"'), 'we. ird', 't "q". x')).toBe(true);
    expect(matchesTable(q('*.t'), 'any', 't')).toBe(true);
    // Regex characters are themselves.
    expect(matchesTable(q('app.a+b'), 'app', 'aab')).toBe(false);
    expect(matchesTable(q('app.a+b'), 'app', 'a+b')).toBe(true);
  });

  it('refuses what is not SCHEMA.NAME, naming the problem', () => {
    expect(parseQualifiedPattern('--table', 'orders')).toMatch(/name the schema too/);
    expect(parseQualifiedPattern('--table', 'db.app.orders')).toMatch(/more than one dot/);
    expect(parseQualifiedPattern('--table', 'app.')).toMatch(/ends with a dot/);
    expect(parseQualifiedPattern('--table', '.t')).toMatch(/empty name/);
    expect(parseQualifiedPattern('--table', 'app."x')).toMatch(/unclosed double quote/);
    expect(parseSchemaPattern('a.b')).toMatch(/no dot/);
    expect(typeof parseSchemaPattern('"a.b"')).toBe('object');
  });
});

describe('what a statement acts on', () => {
  it('reads the target from the statement, quoted names and all', () => {
    expect(classify('CREATE TABLE "we. ird"."t ""q"". x" (\n id int\n);')).toMatchObject({ k: 'rel', rel: ['we. ird', 't "q". x'], creates: true, partitioned: false });
    expect(classify('CREATE TABLE app.ev (\n id int\n)\nPARTITION BY RANGE (at);')).toMatchObject({ k: 'rel', partitioned: true });
    expect(classify('ALTER TABLE ONLY app.ev ATTACH PARTITION app.ev_1 FOR VALUES FROM (1) TO (2);')).toEqual({ k: 'attach', parent: ['app', 'ev'], child: ['app', 'ev_1'] });
    expect(classify('ALTER TABLE ONLY app.orders\n    ADD CONSTRAINT "o fk" FOREIGN KEY (cust) REFERENCES app.customers(id);')).toEqual({
      k: 'fk',
      rel: ['app', 'orders'],
      ref: ['app', 'customers'],
      constraint: 'o fk',
    });
    expect(classify('ALTER TABLE ONLY app.orders\n    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);')).toEqual({ k: 'rel', rel: ['app', 'orders'], definesIndex: ['app', 'orders_pkey'] });
    expect(classify('CREATE UNIQUE INDEX "on" ON ONLY app.ev USING btree (at);')).toEqual({ k: 'rel', rel: ['app', 'ev'], definesIndex: ['app', 'on'] });
    expect(classify('ALTER INDEX app.ev_at ATTACH PARTITION app.ev_1_at_idx;')).toEqual({ k: 'indexAttach', parent: ['app', 'ev_at'], child: ['app', 'ev_1_at_idx'] });
    expect(classify('CREATE TRIGGER trg BEFORE UPDATE OF "on" ON app.orders FOR EACH ROW EXECUTE FUNCTION f();')).toEqual({ k: 'rel', rel: ['app', 'orders'] });
    expect(classify('CREATE RULE r AS\n    ON UPDATE TO app.customers DO\n NOTIFY x;')).toEqual({ k: 'rel', rel: ['app', 'customers'] });
    expect(classify('CREATE POLICY p ON app.orders USING (true);')).toEqual({ k: 'rel', rel: ['app', 'orders'] });
    expect(classify('COMMENT ON COLUMN app.orders.note IS \'n\';')).toEqual({ k: 'rel', rel: ['app', 'orders'] });
    expect(classify('COMMENT ON CONSTRAINT c ON app.orders IS \'x\';')).toEqual({ k: 'rel', rel: ['app', 'orders'] });
    expect(classify('COMMENT ON CONSTRAINT c ON DOMAIN app.d IS \'x\';')).toEqual({ k: 'other' });
    expect(classify('GRANT SELECT(name) ON TABLE app.customers TO PUBLIC;')).toEqual({ k: 'rel', rel: ['app', 'customers'] });
    expect(classify('GRANT ALL ON SEQUENCE app.s TO x;')).toEqual({ k: 'seq', seq: ['app', 's'] });
    expect(classify('GRANT USAGE ON SCHEMA app TO x;')).toEqual({ k: 'schema', name: 'app' });
    expect(classify('COPY "we. ird"."t ""q"". x" (id, v) FROM stdin;')).toEqual({ k: 'rel', rel: ['we. ird', 't "q". x'] });
    expect(classify("SELECT pg_catalog.setval('app.\"My \"\"Seq\"', 2, true);")).toEqual({ k: 'seq', seq: ['app', 'My "Seq'] });
    expect(classify('ALTER SEQUENCE app.s OWNED BY app.t.id;')).toEqual({ k: 'seq', seq: ['app', 's'], ownedBy: ['app', 't'] });
    expect(classify('ALTER TABLE app.orders ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME app.orders_id_seq\n    START WITH 1\n);')).toEqual({
      k: 'rel',
      rel: ['app', 'orders'],
      identitySeq: ['app', 'orders_id_seq'],
    });
    expect(classify('CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA app;')).toEqual({ k: 'extension', name: 'hstore', schema: 'app' });
    expect(classify("SELECT pg_catalog.set_config('search_path', '', false);")).toEqual({ k: 'keep' });
    expect(classify('CREATE VIEW app.v AS SELECT 1;')).toEqual({ k: 'other' });
  });

  it('tokens: comments, strings and quoted identifiers', () => {
    expect(tokens(`CREATE /* c */ TABLE -- x\n "A""b".c ('s''t');`).map((t) => `${t.k}:${t.v}`)).toEqual(['w:create', 'w:table', 'q:A"b', 'p:.', 'w:c', 'p:(', "s:s't", 'p:)', 'p:;']);
  });
});

/**
 * `buf` in pieces of `size` bytes where the reader decides (the statement's head, where it
 * crosses HOLD_LIMIT, the statements after it), and of at least 64 KiB in the long body between:
 * 7-byte pieces all the way would be 150,000 of them, and seconds of test time for nothing more.
 */
function pieces(buf: Buffer, size: number): Buffer[] {
  const W = 16_384;
  const fine = [0, HOLD_LIMIT - W, buf.length - W];
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const inFine = fine.some((a) => i >= a && i < a + 2 * W);
    // Outside the fine windows: large pieces, but never reaching past the start of the next one.
    const next = Math.min(buf.length, ...fine.filter((a) => a > i));
    const n = inFine ? size : Math.min(Math.max(size, 65_536), next - i);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

describe('the reader drops a statement too long to hold', () => {
  it('decided from its head; its bytes are let go, the rest passes', async () => {
    const body = 'x'.repeat(HOLD_LIMIT + 1000);
    const input = `-- Name: f; Type: FUNCTION; Schema: other; Owner: o\nCREATE FUNCTION other.f() RETURNS text LANGUAGE sql AS $$ SELECT '${body}' $$;\n-- Name: t; Type: TABLE; Schema: app; Owner: o\nCREATE TABLE app.t (x int);\n-- PostgreSQL database dump complete\n`;
    const buf = Buffer.from(input);
    for (const size of [7, 4096, 1 << 20]) {
      const r = new DumpReader({ rewrite: (s) => (/other\./.test(s.text.slice(0, 100)) ? null : undefined), requireComplete: true });
      const parts: Buffer[] = [];
      r.on('data', (c: Buffer) => parts.push(Buffer.from(c)));
      await pipeline(Readable.from(pieces(buf, size)), r);
      const out = Buffer.concat(parts).toString();
      expect(out).not.toContain('CREATE FUNCTION');
      expect(out).not.toContain('xxxx');
      expect(out).toContain('CREATE TABLE app.t (x int);');
    }
  });
});
