import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DumpReader, copyTarget, type DumpReaderOptions, type Statement } from '../../../src/pipeline/dumpreader.js';

/** Run `input` through a reader in chunks of `size` bytes; what came out and what it saw. */
async function read(input: string | Buffer, size: number, o: DumpReaderOptions = {}) {
  const seen: Statement[] = [];
  const user = o.rewrite;
  const r = new DumpReader({
    ...o,
    rewrite: (s) => {
      seen.push(s);
      return user?.(s);
    },
  });
  const parts: Buffer[] = [];
  r.on('data', (c: Buffer) => parts.push(Buffer.from(c)));
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(Buffer.from(buf.subarray(i, i + size)));
  await pipeline(Readable.from(chunks), r);
  return { r, out: Buffer.concat(parts), seen };
}

const SIZES = [1, 2, 3, 5, 7, 13, 64, 1 << 20];

const TRICKY = `--
-- PostgreSQL database dump
--

\\restrict abc123

SET statement_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: f(); Type: FUNCTION; Schema: public; Owner: alice
--

CREATE FUNCTION public.f() RETURNS text
    LANGUAGE plpgsql
    AS $_$
BEGIN
ALTER TABLE public.t OWNER TO bob;
SET transaction_timeout = 0;
RETURN 'a;b' || $x$ ; $x$;
END
$_$;


ALTER FUNCTION public.f() OWNER TO alice;

--
-- Name: g(); Type: FUNCTION; Schema: public; Owner: alice
--

CREATE FUNCTION public.g() RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT 1;
 SELECT CASE WHEN true THEN 2 ELSE 3 END;
END;

--
-- Name: t; Type: COMMENT; Schema: public; Owner: alice
--

COMMENT ON TABLE public.t IS 'line one;
SET transaction_timeout = 0;
ALTER TABLE x OWNER TO y;
it''s';

COMMENT ON TABLE public.u IS E'back\\\\slash \\' quote;
SET transaction_timeout = 0;';

/* a comment; with /* nested */ semicolons; */
CREATE RULE r AS ON INSERT TO public.t DO (INSERT INTO public.u VALUES (1); INSERT INTO public.u VALUES (2));

--
-- Data for Name: a b; Type: TABLE DATA; Schema: public; Owner: alice
--

COPY public."a
b" (id, "we""ird)") FROM stdin;
1\tx
2\t\\\\.
SET transaction_timeout = 0;
\\.


--
-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -
--

BEGIN;

SELECT pg_catalog.lo_open('16395', 131072);
SELECT pg_catalog.lowrite(0, '\\x68656c6c6f');
SELECT pg_catalog.lo_close(0);

COMMIT;

--
-- PostgreSQL database dump complete
--

\\unrestrict abc123

`;

describe('DumpReader', () => {
  it('passes a dump through byte-exact, whatever the chunking, and splits it into statements like psql', async () => {
    for (const size of SIZES) {
      const { r, out, seen } = await read(TRICKY, size);
      expect(out.toString('utf8'), `chunk ${size}`).toBe(TRICKY);
      expect(r.complete).toBe(true);
      expect(r.tables).toEqual([{ schema: 'public', name: 'a\nb', rows: 3 }]);
      const heads = seen.map((s) => (s.meta ? s.text : s.text.split('\n')[0]));
      expect(heads, `chunk ${size}`).toEqual([
        '\\restrict abc123',
        'SET statement_timeout = 0;',
        'SET transaction_timeout = 0;',
        "SET client_encoding = 'UTF8';",
        'SET standard_conforming_strings = on;',
        "SELECT pg_catalog.set_config('search_path', '', false);",
        'CREATE FUNCTION public.f() RETURNS text',
        'ALTER FUNCTION public.f() OWNER TO alice;',
        'CREATE FUNCTION public.g() RETURNS integer',
        'COMMENT ON TABLE public.t IS \'line one;',
        "COMMENT ON TABLE public.u IS E'back\\\\slash \\' quote;",
        'CREATE RULE r AS ON INSERT TO public.t DO (INSERT INTO public.u VALUES (1); INSERT INTO public.u VALUES (2));',
        'COPY public."a',
        'BEGIN;',
        "SELECT pg_catalog.lo_open('16395', 131072);",
        "SELECT pg_catalog.lowrite(0, '\\x68656c6c6f');",
        'SELECT pg_catalog.lo_close(0);',
        'COMMIT;',
        '\\unrestrict abc123',
      ]);
      expect(seen.find((s) => s.text.startsWith('CREATE FUNCTION public.f'))!.entry).toMatchObject({ type: 'FUNCTION', name: 'f()', schema: 'public', owner: 'alice' });
      expect(seen.find((s) => s.text.startsWith('BEGIN'))!.entry).toMatchObject({ type: 'BLOBS', data: true, schema: null });
      expect(seen[1]!.section).toBe('preamble');
    }
  });

  it('rewrites whole statements only: never text inside a body, a literal or COPY data', async () => {
    const rewrite = (s: Statement) => {
      if (s.meta) return null;
      if (/^SET transaction_timeout/.test(s.text)) return null;
      if (/^ALTER [A-Z ]+ .* OWNER TO .*;$/s.test(s.text)) return null;
      return undefined;
    };
    for (const size of [1, 3, 64, 1 << 20]) {
      const { out, r } = await read(TRICKY, size, { rewrite, dropBlobTransaction: true });
      const text = out.toString('utf8');
      const expected = TRICKY.replace('\\restrict abc123\n', '')
        .replace('\\unrestrict abc123\n', '')
        .replace('SET transaction_timeout = 0;\nSET client_encoding', '\nSET client_encoding')
        .replace('ALTER FUNCTION public.f() OWNER TO alice;', '')
        .replace('BEGIN;\n\nSELECT pg_catalog.lo_open', '\n\nSELECT pg_catalog.lo_open')
        .replace('COMMIT;\n\n--\n-- PostgreSQL database dump complete', '\n\n--\n-- PostgreSQL database dump complete');
      expect(text, `chunk ${size}`).toBe(expected);
      // Inside the body, the comment and the COPY data, everything stays.
      expect(text).toContain('ALTER TABLE public.t OWNER TO bob;\nSET transaction_timeout = 0;\nRETURN');
      expect(text).toContain("line one;\nSET transaction_timeout = 0;\nALTER TABLE x OWNER TO y;\nit''s';");
      expect(text).toContain('2\t\\\\.\nSET transaction_timeout = 0;\n\\.\n');
      expect(r.tables[0]!.rows).toBe(3);
      expect(r.dropped.get('BEGIN')).toBe(1);
      expect(r.dropped.get('COMMIT')).toBe(1);
    }
  });

  it('skips the drop section of a --clean dump as whole statements', async () => {
    const dump = `SET client_encoding = 'UTF8';
SELECT pg_catalog.set_config('search_path', '', false);

CREATE OR REPLACE VIEW s.v AS
SELECT
    NULL::integer AS id;
ALTER TABLE IF EXISTS ONLY s.o DROP CONSTRAINT IF EXISTS o_pkey;
ALTER DOMAIN public.d DROP CONSTRAINT IF EXISTS "odd;name";
SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata WHERE oid = '16395';
DROP VIEW IF EXISTS s.v;
DROP SCHEMA IF EXISTS s;
--
-- Name: s; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA s;

--
-- PostgreSQL database dump complete
--
`;
    for (const size of [1, 4, 1 << 20]) {
      const { out, r } = await read(dump, size, { skipClean: true, requireComplete: true });
      const text = out.toString();
      expect(r.skippedClean).toBe(6);
      expect(text).not.toMatch(/DROP|lo_unlink|NULL::integer/);
      expect(text).toContain('CREATE SCHEMA s;');
      expect(text).toContain("SET client_encoding = 'UTF8';");
    }
  });

  it('fails at the end without the completion marker when asked to', async () => {
    const cut = TRICKY.slice(0, TRICKY.indexOf('--\n-- Data for Name: BLOBS'));
    await expect(read(cut, 64, { requireComplete: true })).rejects.toThrow(/completion marker/);
    await expect(read('', 64, { requireComplete: true })).rejects.toThrow(/completion marker/);
    // A statement after the marker means the marker was not the end.
    await expect(read(TRICKY + 'DROP TABLE x;\n', 64, { requireComplete: true })).rejects.toThrow(/completion marker/);
    const ok = await read(TRICKY, 64, { requireComplete: true });
    expect(ok.r.complete).toBe(true);
  });

  it('drops a COPY statement with its data', async () => {
    const dump = 'COPY public.a (x) FROM stdin;\n1\n2\n\\.\nCOPY public.b (x) FROM stdin;\n3\n\\.\n';
    for (const size of [1, 5, 1 << 20]) {
      const { out, r } = await read(dump, size, { rewrite: (s) => (s.text.startsWith('COPY public.a') ? null : undefined) });
      expect(out.toString()).toBe('COPY public.b (x) FROM stdin;\n3\n\\.\n');
      expect(r.tables).toEqual([{ schema: 'public', name: 'b', rows: 1 }]);
    }
  });

  it('decodes names in the dump\'s client encoding; SQL_ASCII byte-exact', async () => {
    const latin1 = Buffer.concat([Buffer.from("SET client_encoding = 'LATIN1';\nCOPY public.\"caf"), Buffer.from([0xe9]), Buffer.from('" (x) FROM stdin;\n1\n\\.\n')]);
    const a = await read(latin1, 3);
    expect(a.r.tables).toEqual([{ schema: 'public', name: 'café', rows: 1 }]);
    expect(a.out.equals(latin1)).toBe(true);
    const ascii = Buffer.concat([Buffer.from("SET client_encoding = 'SQL_ASCII';\nCOPY public.\"caf"), Buffer.from([0xe9]), Buffer.from('" (x) FROM stdin;\n1\n\\.\n')]);
    const b = await read(ascii, 3);
    expect(b.r.tables).toEqual([{ schema: 'public', name: 'caf\\xe9', rows: 1 }]);
  });

  it('keeps statements longer than the hold limit streaming, unrewritten', async () => {
    const big = `SELECT pg_catalog.lowrite(0, '\\x${'ab'.repeat(1 << 20)}');\nCREATE TABLE x ();\n`;
    const { out, seen } = await read(big, 65536);
    expect(out.toString()).toBe(big);
    expect(seen[0]!.streamed).toBe(true);
    expect(seen[1]!.text).toBe('CREATE TABLE x ();');
    // Dropping one is possible (decided from its head, its bytes let go); replacing one is not.
    const dropped = await read(big, 65536, { rewrite: (s) => (s.text.startsWith('SELECT') ? null : undefined) });
    expect(dropped.out.toString()).toBe('\nCREATE TABLE x ();\n');
    await expect(read(big, 65536, { rewrite: (s) => (s.text.startsWith('SELECT') ? 'SELECT 1;' : undefined) })).rejects.toThrow(/cannot make/);
  });

  it('reads standard_conforming_strings = off dumps with backslash escapes', async () => {
    const dump = "SET standard_conforming_strings = off;\nINSERT INTO t VALUES ('a\\'; DROP TABLE t; --');\nCREATE TABLE z ();\n";
    const { seen } = await read(dump, 2);
    expect(seen.map((s) => s.text.split('\n')[0])).toEqual([
      'SET standard_conforming_strings = off;',
      "INSERT INTO t VALUES ('a\\'; DROP TABLE t; --');",
      'CREATE TABLE z ();',
    ]);
  });

  it('parses COPY targets', () => {
    expect(copyTarget('COPY public.t (a, b) FROM stdin;')).toEqual({ schema: 'public', name: 't' });
    expect(copyTarget('COPY "My S"."x""y" (a) FROM stdin;')).toEqual({ schema: 'My S', name: 'x"y' });
    expect(copyTarget('COPY public.t  FROM stdin;')).toEqual({ schema: 'public', name: 't' });
    expect(copyTarget('COPY public.t ("a)b") FROM stdin;')).toEqual({ schema: 'public', name: 't' });
    expect(copyTarget('COPY public.t TO stdout;')).toBeNull();
  });
});

describe('DumpReader in object mode', () => {
  async function items(input: string, size: number) {
    const r = new DumpReader({ objects: true });
    const got: Array<Record<string, unknown>> = [];
    r.on('data', (it) => got.push(it));
    const buf = Buffer.from(input);
    const chunks: Buffer[] = [];
    for (let i = 0; i < buf.length; i += size) chunks.push(Buffer.from(buf.subarray(i, i + size)));
    await pipeline(Readable.from(chunks), r);
    return { r, got };
  }

  it('hands on whole statements, COPY data in whole lines and COPY ends, at every chunking', async () => {
    for (const size of SIZES) {
      const { got, r } = await items(TRICKY, size);
      const stmts = got.filter((x) => x.t === 'stmt').map((x) => (x.text as string).split('\n')[0]);
      expect(stmts.length, `chunk ${size}`).toBe(19);
      const data = Buffer.concat(got.filter((x) => x.t === 'data').map((x) => x.buf as Buffer)).toString();
      expect(data, `chunk ${size}`).toBe('1\tx\n2\t\\\\.\nSET transaction_timeout = 0;\n');
      for (const x of got) if (x.t === 'data') expect((x.buf as Buffer).at(-1), `chunk ${size}`).toBe(0x0a);
      const copyIdx = got.findIndex((x) => x.t === 'stmt' && (x.text as string).startsWith('COPY'));
      expect(got[copyIdx]!.copy).toMatchObject({ schema: 'public', name: 'a\nb' });
      expect(got.findIndex((x) => x.t === 'copyEnd')).toBeGreaterThan(copyIdx);
      expect(r.complete).toBe(true);
    }
  });
});
