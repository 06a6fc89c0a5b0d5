/**
 * Tablespaces in a `_globals` restore (pg_dumpall --globals-only). CREATE TABLESPACE cannot run
 * inside a transaction, so a first pass over the (small) globals dump finds pg_dumpall's
 * `CREATE TABLESPACE name OWNER role LOCATION '...';` statements; the missing tablespaces are
 * created before the restore's transaction (their locations checked first), owned for now by
 * the restoring role; in the transaction each CREATE TABLESPACE becomes `ALTER TABLESPACE name
 * OWNER TO role` (the role may be created by the same dump), and the dump's own ALTER
 * TABLESPACE ... SET, GRANT and COMMENT statements follow as they are. A failed restore drops
 * the tablespaces it created (restoreprops.dropCreated).
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from '../support/context.js';
import type { ConnInfo } from '../pg/conn.js';
import { withClient, DbError } from '../pg/db.js';
import { RestoreError, messageOf } from '../support/errors.js';
import { DumpReader, type Rewrite } from '../pipeline/dumpreader.js';
import { openBackup, type Located } from './open.js';
import type { CreatedDb } from './restore-props.js';

export interface TablespaceDef {
  /** The name as the dump spells it (quoted when pg_dumpall quoted it): SQL, latin1 text of the dump's bytes. */
  nameSql: string;
  /** The name itself (UTF8). */
  name: string;
  /** The owner as the dump spells it (SQL). */
  ownerSql: string;
  /** The location's literal as the dump spells it (SQL). */
  locationSql: string;
  /** The location itself. */
  location: string;
}

const IDENT = `("(?:[^"]|"")*"|[^\\s"]+)`;
const LITERAL = `(E'(?:[^'\\\\]|''|\\\\[\\s\\S])*'|'(?:[^']|'')*')`;
const CREATE_TS = new RegExp(`^CREATE TABLESPACE ${IDENT} OWNER ${IDENT} LOCATION ${LITERAL};\\s*$`);

function utf8(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8');
}

function unquoteIdent(s: string): string {
  return s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s;
}

function unquoteLiteral(s: string): string {
  if (s.startsWith('E')) return s.slice(2, -1).replace(/''/g, "'").replace(/\\([\s\S])/g, '$1');
  return s.slice(1, -1).replace(/''/g, "'");
}

/** pg_dumpall's `CREATE TABLESPACE name OWNER role LOCATION '...';` (one statement, latin1 text), or null. */
export function parseCreateTablespace(statement: string): TablespaceDef | null {
  const m = CREATE_TS.exec(statement.trimStart());
  if (!m) return null;
  return { nameSql: m[1]!, name: utf8(unquoteIdent(m[1]!)), ownerSql: m[2]!, locationSql: m[3]!, location: utf8(unquoteLiteral(m[3]!)) };
}

/**
 * The tablespaces a globals dump creates, from its whole text (pg_dumpall writes each CREATE
 * TABLESPACE on one line). For callers that hold the text; the restore itself uses the
 * statement reader (readTablespaces).
 */
export function tablespacePlan(sqlText: string): TablespaceDef[] {
  const out: TablespaceDef[] = [];
  for (const line of sqlText.split('\n')) {
    if (!line.startsWith('CREATE TABLESPACE ')) continue;
    const d = parseCreateTablespace(line);
    if (d) out.push(d);
  }
  return out;
}

/** In the restore's transaction: CREATE TABLESPACE (done before it) becomes the owner change. */
export function tablespaceRewrite(): Rewrite {
  return (st) => {
    if (st.meta || !st.text.trimStart().startsWith('CREATE TABLESPACE ')) return undefined;
    const d = parseCreateTablespace(st.text);
    return d ? `ALTER TABLESPACE ${d.nameSql} OWNER TO ${d.ownerSql};` : undefined;
  };
}

/** A first pass over the backup: its CREATE TABLESPACE statements. */
async function readTablespaces(ctx: Context, located: Located, secrets: Parameters<typeof openBackup>[2]): Promise<TablespaceDef[]> {
  const opened = await openBackup(ctx, located, secrets);
  const found: TablespaceDef[] = [];
  const reader = new DumpReader({
    rewrite: (st) => {
      if (!st.meta && st.text.trimStart().startsWith('CREATE TABLESPACE ')) {
        const d = parseCreateTablespace(st.text);
        if (d) found.push(d);
      }
      return undefined;
    },
  });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  await pipeline([...opened.stages, reader, sink], { signal: ctx.signal });
  return found;
}

/**
 * Before a `_globals` restore's transaction: create the tablespaces the dump has and the
 * target cluster lacks (after checking every location), and return the rewrite that turns the
 * dump's CREATE TABLESPACE statements into owner changes. Nothing is created unless every
 * location checks out; a tablespace that exists stays where it is (a warning when its location
 * differs).
 */
export async function prepareTablespaces(ctx: Context, located: Located, secrets: Parameters<typeof openBackup>[2], dest: ConnInfo, made: CreatedDb): Promise<Rewrite | undefined> {
  const defs = await readTablespaces(ctx, located, secrets);
  if (!defs.length) return undefined;
  const fail = (e: unknown) => (e instanceof DbError ? new RestoreError('TABLESPACE', e.message, { cause: e }) : e);
  await withClient(dest, ctx.signal, async (c) => {
    const have = new Map<string, string>(
      (await c.query(`SELECT spcname, pg_tablespace_location(oid) AS loc FROM pg_tablespace`)).rows.map((r) => [r.spcname as string, r.loc as string]),
    );
    const missing = defs.filter((d) => {
      if (!have.has(d.name)) return true;
      if (have.get(d.name) !== d.location) {
        ctx.log.warn({ tablespace: d.name, location: have.get(d.name), source: d.location }, 'the tablespace exists on the target at another location; it stays there');
      }
      return false;
    });
    // Every location first: nothing is created unless all of them can be.
    const problems: string[] = [];
    for (const d of missing) {
      if (d.location === '') continue; // an in-place tablespace (allow_in_place_tablespaces)
      try {
        const r = await c.query(`SELECT (pg_stat_file($1, true)).isdir AS isdir`, [d.location]);
        const isdir = r.rows[0]?.isdir;
        if (isdir === null || isdir === undefined) problems.push(`tablespace "${d.name}": its location ${d.location} does not exist on the target server`);
        else if (!isdir) problems.push(`tablespace "${d.name}": its location ${d.location} on the target server is not a directory`);
      } catch (e) {
        // Without the right to look (pg_read_server_files), CREATE TABLESPACE says what is wrong.
        ctx.log.debug({ tablespace: d.name, err: messageOf(e) }, 'cannot check the tablespace location');
      }
    }
    if (problems.length) {
      throw new RestoreError(
        'TABLESPACE_LOCATION',
        `${problems.join('; ')}. Create each location on the database server (an empty directory owned by the PostgreSQL server's user) and run the restore again; nothing was changed`,
      );
    }
    made.tablespaceAdmin = dest;
    made.tablespaces ??= [];
    for (const d of missing) {
      try {
        await c.query(`CREATE TABLESPACE ${utf8(d.nameSql)} LOCATION ${utf8(d.locationSql)}`);
      } catch (e) {
        throw new RestoreError('TABLESPACE', `cannot create tablespace "${d.name}" at ${d.location}: ${messageOf(e)}`, { cause: e });
      }
      made.tablespaces.push(d.name);
      ctx.log.info({ tablespace: d.name, location: d.location }, 'created the tablespace before the restore\'s transaction (its owner, privileges and options are set inside it)');
    }
  }).catch((e) => {
    throw fail(e);
  });
  return tablespaceRewrite();
}
