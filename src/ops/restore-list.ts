/**
 * `restore --list`: the entries of a backup, read in one pass over the stream (nothing is
 * restored): type, schema, name and owner from pg_dump's entry headers, and the rows of each
 * table's data, counted from its COPY block.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from '../support/context.js';
import { DumpError, VerifyError, classifyData, firstError } from '../support/errors.js';
import { DumpReader, type Entry } from '../pipeline/dumpreader.js';
import type { openBackup } from './open.js';

export interface ListedEntry {
  type: string;
  schema: string | null;
  name: string;
  owner: string | null;
  /** Rows of a TABLE DATA entry's COPY block. */
  rows?: number;
}

export async function listEntries(ctx: Context, opened: Awaited<ReturnType<typeof openBackup>>, display: string): Promise<{ entries: ListedEntry[]; complete: boolean }> {
  const entries: ListedEntry[] = [];
  const byEntry = new Map<Entry, ListedEntry>();
  const reader = new DumpReader({
    onEntry: (e) => {
      const x: ListedEntry = { type: e.type, schema: e.schema, name: e.name, owner: e.owner };
      entries.push(x);
      byEntry.set(e, x);
    },
    rewrite: (st) => {
      if (!st.meta && st.entry && /^COPY\s/i.test(st.text)) byEntry.get(st.entry)!.rows = -1; // counted below
      return undefined;
    },
  });
  const sink = new Writable({ highWaterMark: 1 << 20, write: (_c, _e, cb) => cb() });
  try {
    await pipeline([...opened.stages, reader, sink], { signal: ctx.signal });
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (e instanceof DumpError) throw new VerifyError('INCOMPLETE', `${display}: ${e.message}`, { cause: e });
    throw firstError([classifyData(e)]);
  }
  // COPY blocks come in the order of their entries.
  let k = 0;
  for (const x of entries) if (x.rows === -1) x.rows = reader.tables[k++]?.rows ?? 0;
  return { entries, complete: reader.complete };
}

/** A field of the text listing: tab, newline, carriage return and backslash escaped as in COPY's text format. */
export function listField(s: string): string {
  return s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/**
 * One line per entry, tab-separated: TYPE, SCHEMA, NAME, OWNER, ROWS (an empty field for no schema or owner
 * (no identifier is empty), and for entries without data). Names may hold spaces, dots and quotes, so the
 * columns are split by tabs only; a tab, newline or backslash inside a field is written as \t,
 * \n or \\ (as in COPY's text format). --json gives the same entries as JSON.
 */
export function formatEntries(entries: ListedEntry[]): string {
  return entries.map((e) => [e.type, e.schema ?? '', e.name, e.owner ?? '', e.rows !== undefined ? String(e.rows) : ''].map(listField).join('\t') + '\n').join('');
}
