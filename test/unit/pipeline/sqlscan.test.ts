import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SqlScan, type LineFilter } from '../../../src/pipeline/sqlscan.js';

const DUMP = `--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
SET transaction_timeout = 0;
COPY public.users (id, name) FROM stdin;
1\talice
2\t\\\\.
3\tline\\nbreak
\\.
COPY "My Schema"."Odd ""T""" (x) FROM stdin;
\\.
COPY sales.orders (id) FROM stdin;
1
\\.
CREATE VIEW v AS SELECT 1;

--
-- PostgreSQL database dump complete
--

\\unrestrict abc
`;

async function scan(text: string, chunk: number, filter?: LineFilter, requireComplete = false) {
  const s = new SqlScan(filter, requireComplete);
  const parts: Buffer[] = [];
  s.on('data', (c: Buffer) => parts.push(c));
  const buf = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk));
  await pipeline(Readable.from(chunks), s);
  return { s, out: Buffer.concat(parts).toString() };
}

describe('SqlScan', () => {
  for (const chunk of [1, 2, 3, 7, 64, 100000]) {
    it(`counts COPY rows, sees the completion marker and passes bytes through (chunks of ${chunk})`, async () => {
      const { s, out } = await scan(DUMP, chunk);
      expect(out).toBe(DUMP);
      expect(s.tables).toEqual([
        { schema: 'public', name: 'users', rows: 3 },
        { schema: 'My Schema', name: 'Odd "T"', rows: 0 },
        { schema: 'sales', name: 'orders', rows: 1 },
      ]);
      expect(s.complete).toBe(true);
      expect(s.bytes).toBe(Buffer.byteLength(DUMP));
    });
    it(`filters statement lines, never COPY data (chunks of ${chunk})`, async () => {
      const text = DUMP.replace('1\talice', '1\tSET transaction_timeout = 0;');
      const { out } = await scan(text, chunk, (l) => (l.startsWith('SET transaction_timeout') ? null : l.startsWith('CREATE VIEW') ? l.replace('v', 'w') : l));
      expect(out).toBe(text.replace('SET transaction_timeout = 0;\nCOPY', 'COPY').replace('CREATE VIEW v', 'CREATE VIEW w'));
    });
  }
  it('a dump cut short is not complete, and fails when completeness is required', async () => {
    const cut = DUMP.slice(0, DUMP.indexOf('CREATE VIEW'));
    const { s } = await scan(cut, 5);
    expect(s.complete).toBe(false);
    await expect(scan(cut, 5, undefined, true)).rejects.toMatchObject({ exitCode: 3 });
  });
});
