/**
 * Selective restore (`--table`, `--schema`, `--exclude-table`): some tables (or whole schemas)
 * of a full backup, into a new database or over the same objects of an existing one, in one
 * transaction. docs/restore.md says what comes along and what is left out.
 *
 * 1. A pre-pass reads the backup's pre-data (its first part: definitions, no data) and stops:
 *    which tables exist, which are partitions of which, which sequences belong to which table.
 *    A pattern that matches nothing is refused here, before anything is touched.
 * 2. The target is inspected: which of those objects it has (they are replaced), and whether
 *    anything else depends on them. A view, a function or a default elsewhere that depends on a
 *    replaced table stops the restore before anything changes; foreign keys of other tables that
 *    reference a replaced table are dropped and re-created (and re-validated) in the transaction.
 * 3. One pass over the whole stream: psql gets the drops, the selected objects' statements and
 *    data, and the re-created foreign keys, in one transaction that commits only when the whole
 *    object arrived and checks out (size, sha256, row counts of the selected tables).
 */
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { RestoreConfig } from '../config/config.js';
import type { Context } from '../support/context.js';
import { formatBytes, formatDuration } from '../support/units.js';
import { withDatabase, type ConnInfo } from '../pg/conn.js';
import { DbError, queryServerVersion, quoteIdent, withClient, type ServerVersion } from '../pg/db.js';
import { DumpError, RestoreError, UsageError, VerifyError, classifyData, firstError } from '../support/errors.js';
import { DumpReader } from '../pipeline/dumpreader.js';
import { Catalog, SelectiveFilter, catalogRewrite, endsPreData, planSelection, type Plan } from '../pipeline/selective.js';
import { sqlName, type Selection } from '../model/selection.js';
import type { Manifest } from '../model/manifest.js';
import { openBackup, type Located } from './open.js';
import { ago, compareCounts, confirm, countsAhead, decryptSecrets, loadInto, started, takeSafetyBackup, type LoadedSecrets } from './restore.js';
import { createTargetDatabase, propertiesPostamble, type CreatedDb } from './restore-props.js';
import { describeSession, namingLockHolders, terminateOthers } from './safety.js';
import { parseKey } from '../model/keys.js';

const key = (s: string, n: string) => JSON.stringify([s, n]);

class EnoughRead extends Error {}

/** The pre-pass: the backup's pre-data into a Catalog; stops at the first data or post-data entry. */
export async function readCatalog(ctx: Context, opened: Awaited<ReturnType<typeof openBackup>>, display: string): Promise<Catalog> {
  let reader: DumpReader | undefined = undefined;
  const cat = new Catalog(() => reader?.encoding ?? 'UTF8');
  reader = new DumpReader({
    rewrite: catalogRewrite(cat),
    onEntry: (e) => {
      if (endsPreData(e)) throw new EnoughRead('pre-data read');
    },
  });
  const sink = new Writable({ highWaterMark: 1 << 20, write: (_c, _e, cb) => cb() });
  try {
    await pipeline([...opened.stages, reader, sink], { signal: ctx.signal });
  } catch (e) {
    if (e instanceof EnoughRead) return cat;
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (e instanceof DumpError) throw new VerifyError('INCOMPLETE', `${display}: ${e.message}; nothing was changed`, { cause: e });
    throw firstError([classifyData(e)]);
  }
  return cat;
}

interface TargetState {
  exists: boolean;
  /** Tables (r, p, f) by key: oid. */
  tables: Map<string, number>;
  /** Schemas by name: oid. */
  schemas: Map<string, number>;
  /** The server, when the database exists. */
  server: ServerVersion | undefined;
}

async function inspectTarget(ci: ConnInfo, signal: AbortSignal): Promise<TargetState> {
  try {
    return await withClient(ci, signal, async (c) => {
      const t = await c.query(
        `SELECT c.oid::int8 AS oid, n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r','p','f') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'`,
      );
      const s = await c.query(`SELECT oid::int8 AS oid, nspname AS s FROM pg_namespace`);
      return {
        exists: true,
        tables: new Map(t.rows.map((r) => [key(r.s, r.t), Number(r.oid)])),
        schemas: new Map(s.rows.map((r) => [r.s as string, Number(r.oid)])),
        server: await queryServerVersion(c),
      };
    });
  } catch (e) {
    if (e instanceof DbError && e.pgCode === '3D000') return { exists: false, tables: new Map(), schemas: new Map([['public', 0]]), server: undefined };
    if (e instanceof DbError) throw new RestoreError('CONNECT', e.message, { cause: e });
    throw e;
  }
}

interface Dependents {
  /** Objects outside what is replaced that depend on it: the restore refuses. */
  blockers: string[];
  /** Foreign keys of other tables that reference a replaced table: dropped and re-created. */
  foreignKeys: Array<{ drop: string; add: string; what: string }>;
}

/**
 * What depends on the replaced tables and dropped schemas (and on everything that goes with
 * them: indexes, constraints, sequences, partitions, row types, and a dropped schema's objects),
 * from pg_depend. Foreign keys of other tables are handled; anything else blocks.
 */
async function dependents(ci: ConnInfo, tableOids: number[], schemaOids: number[], signal: AbortSignal): Promise<Dependents> {
  return withClient(ci, signal, async (c) => {
    const r = await c.query(
      `WITH RECURSIVE members(classid, objid) AS (
         SELECT 'pg_class'::regclass::oid, unnest($1::oid[])
         UNION SELECT 'pg_namespace'::regclass::oid, unnest($2::oid[])
         UNION
         SELECT d.classid, d.objid FROM pg_depend d JOIN members m ON d.refclassid = m.classid AND d.refobjid = m.objid
          WHERE d.deptype IN ('a','i','e','P','S') OR (m.classid = 'pg_namespace'::regclass AND d.deptype = 'n')
       )
       SELECT DISTINCT d.classid::int8 AS classid, d.objid::int8 AS objid,
              -- schema-qualified whatever the search_path; a view depends through its _RETURN
              -- rule: name the view, as a user knows it
              CASE WHEN rw.rulename = '_RETURN' THEN (SELECT format('%s %s', i.type, i.identity) FROM pg_identify_object('pg_class'::regclass, rw.ev_class, 0) i)
                   ELSE (SELECT format('%s %s', i.type, i.identity) FROM pg_identify_object(d.classid, d.objid, 0) i) END AS what,
              c.contype::text AS contype, c.conparentid::int8 AS conparent,
              CASE WHEN c.contype = 'f' THEN format('ALTER TABLE %I.%I DROP CONSTRAINT %I;', n.nspname, cl.relname, c.conname) END AS drop,
              CASE WHEN c.contype = 'f' THEN format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s;', n.nspname, cl.relname, c.conname, pg_get_constraintdef(c.oid)) END AS add
         FROM pg_depend d JOIN members m ON d.refclassid = m.classid AND d.refobjid = m.objid
         LEFT JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND rw.oid = d.objid
         LEFT JOIN pg_constraint c ON d.classid = 'pg_constraint'::regclass AND c.oid = d.objid
         LEFT JOIN pg_class cl ON cl.oid = c.conrelid
         LEFT JOIN pg_namespace n ON n.oid = cl.relnamespace
        WHERE d.deptype = 'n' AND NOT EXISTS (SELECT 1 FROM members x WHERE x.classid = d.classid AND x.objid = d.objid)
        ORDER BY 3`,
      [tableOids, schemaOids],
    );
    const blockers: string[] = [];
    const foreignKeys: Dependents['foreignKeys'] = [];
    const seen = new Set<string>();
    for (const x of r.rows) {
      if (x.contype === 'f') {
        // A partition's copy of a foreign key goes with the one on its partitioned table.
        if (Number(x.conparent) !== 0 || seen.has(x.drop)) continue;
        seen.add(x.drop);
        foreignKeys.push({ drop: x.drop, add: x.add, what: x.what });
      } else if (!blockers.includes(x.what)) blockers.push(x.what);
    }
    return { blockers, foreignKeys };
  });
}

/** `public` as initdb makes it (pg_dump writes it only when it was changed). */
function publicSchema(versionNum: number): string[] {
  return versionNum >= 150000
    ? ['CREATE SCHEMA IF NOT EXISTS public AUTHORIZATION pg_database_owner;', 'GRANT USAGE ON SCHEMA public TO PUBLIC;', "COMMENT ON SCHEMA public IS 'standard public schema';"]
    : ['CREATE SCHEMA IF NOT EXISTS public;', 'GRANT ALL ON SCHEMA public TO PUBLIC;', "COMMENT ON SCHEMA public IS 'standard public schema';"];
}

export async function restoreSelective(
  ctx: Context,
  cfg: Readonly<RestoreConfig>,
  sel: Selection,
  o: { located: Located; manifest: Manifest | null; opened: Awaited<ReturnType<typeof openBackup>>; secrets: LoadedSecrets; made: CreatedDb },
): Promise<void> {
  const { located, manifest, made } = o;
  const dbName = cfg.dest.database!;
  // 1. The pre-data: what the backup holds; 2. the target, looked at meanwhile. A failure to
  // read the backup is reported first, as when one came after the other.
  const [catalog, inspected] = await Promise.allSettled([readCatalog(ctx, o.opened, located.display), inspectTarget(cfg.dest, ctx.signal)]);
  if (catalog.status === 'rejected') throw catalog.reason;
  if (inspected.status === 'rejected') throw inspected.reason;
  const cat = catalog.value;
  const target = inspected.value;
  if (!target.exists && !cfg.create) throw new UsageError(`target database "${dbName}" does not exist: give --create to create it`);
  const planned = planSelection(cat, sel, (s) => !target.schemas.has(s));
  if ('problems' in planned) throw new UsageError([...planned.problems, 'Nothing was changed.']);
  const plan: Plan = planned;
  for (const x of plan.unusedExcludes) ctx.log.warn({ excludeTable: x }, `--exclude-table ${JSON.stringify(x)} matches no selected table`);
  if (!plan.tables.size && !plan.schemas.size) throw new UsageError('the selection leaves nothing to restore (every selected table is excluded); nothing was changed');

  const droppedSchemas = target.exists ? [...plan.schemas].filter((s) => target.schemas.has(s)).sort() : [];
  const replaced = [...plan.tables.entries()].filter(([k, t]) => target.tables.has(k) && !droppedSchemas.includes(t.schema)).map(([k, t]) => ({ k, ...t }));
  if (droppedSchemas.length) {
    // A table the selection excludes would go with its schema.
    const lost = [...target.tables.keys()]
      .map((k) => JSON.parse(k) as [string, string])
      .filter(([s, n]) => droppedSchemas.includes(s) && cat.tables.has(key(s, n)) && !plan.tables.has(key(s, n)));
    if (lost.length) {
      throw new UsageError(
        `--schema replaces a schema whole, but the target's ${lost.map(([s, n]) => sqlName(s, n)).join(', ')} would go with it although --exclude-table leaves ${lost.length > 1 ? 'them' : 'it'} out; ` +
          'restore the tables you want with --table instead. Nothing was changed.',
      );
    }
  }
  const replacing = replaced.length > 0 || droppedSchemas.length > 0;
  let deps: Dependents = { blockers: [], foreignKeys: [] };
  if (replacing) {
    deps = await dependents(cfg.dest, replaced.map((t) => target.tables.get(t.k)!), droppedSchemas.map((s) => target.schemas.get(s)!), ctx.signal);
    if (deps.blockers.length) {
      throw new RestoreError(
        'DEPENDENTS',
        `objects in "${dbName}" that this restore does not replace depend on what it would replace, so nothing was changed:\n  ${deps.blockers.join('\n  ')}\n` +
          'Drop or change them first, restore their tables or schemas too (--table, --schema), or restore into a new database (--create) and copy from there.',
      );
    }
    if (!cfg.clean) {
      const what = [...droppedSchemas.map((s) => `schema ${s}`), ...replaced.map((t) => sqlName(t.schema, t.name))];
      throw new UsageError(`target database "${dbName}" already has ${what.slice(0, 10).join(', ')}${what.length > 10 ? ` and ${what.length - 10} more` : ''}: give --clean to replace ${what.length > 1 ? 'them' : 'it'} (a safety backup is taken first). Nothing was changed.`);
    }
    if (!cfg.yes) {
      if (!process.stdin.isTTY || !process.stderr.isTTY) throw new UsageError("--clean replaces objects in the target: confirm with --yes when not on a terminal");
      const where = `${cfg.dest.host ?? 'localhost (socket)'}:${cfg.dest.port ?? 5432}`;
      const taken = manifest ? new Date(manifest.createdAt) : (parseKey(located.key)?.time ?? null);
      process.stderr.write(
        `\nTarget:  database "${dbName}" on ${where}\n` +
          `Replace: ${[...droppedSchemas.map((s) => `schema ${s} (everything in it)`), ...replaced.map((t) => sqlName(t.schema, t.name))].join(', ')}\n` +
          (deps.foreignKeys.length ? `         and re-create ${deps.foreignKeys.length} foreign key(s) of other tables that reference them\n` : '') +
          `Backup:  ${located.display}${taken ? `, taken ${taken.toISOString().replace(/\.\d{3}Z$/, 'Z')} (${ago(Date.now() - taken.getTime())})` : ''}\n` +
          `${cfg.safetyBackup ? 'A safety backup of the whole target is stored first.' : 'NO safety backup (--no-safety-backup).'}\n`,
      );
      if (!(await confirm(ctx, `Replace these objects in database "${dbName}" on ${where}? [y/N] `))) throw new UsageError('not confirmed; nothing was changed');
    }
  }

  // 3. Before the load: sessions, the safety backup, the database.
  if (cfg.terminateConnections && target.exists) {
    const ended = await terminateOthers(cfg.dest, ctx.signal);
    if (ended.length) ctx.log.warn({ sessions: ended.map(describeSession) }, `ended ${ended.length} other session(s) on the target (--terminate-connections)`);
  }
  let safetyKey: string | undefined;
  if (replacing && cfg.safetyBackup) safetyKey = await takeSafetyBackup(ctx, cfg, o.secrets, located);
  // The backup, opened again for the load (its age header read) while the database is created.
  const reopened = started(openBackup(ctx, located, decryptSecrets(o.secrets)));
  const server = target.server ?? (await createTargetDatabase(ctx, withDatabase(cfg.dest, 'postgres'), dbName, manifest?.databaseProperties, cfg.createWith, made));
  const versionNum = server.versionNum;

  const preamble: string[] = [`SET lock_timeout = '${cfg.lockTimeoutMs}ms';`];
  preamble.push(...deps.foreignKeys.map((f) => f.drop));
  for (const s of droppedSchemas) preamble.push(`DROP SCHEMA ${quoteIdent(s)} CASCADE;`);
  if (replaced.length) preamble.push(`DROP TABLE ${replaced.map((t) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`).join(', ')};`);
  // Schemas the restored objects need that neither the target (after the drops) nor the dump creates.
  const needed = new Set([...plan.schemas, ...[...plan.tables.values()].map((t) => t.schema)]);
  for (const s of [...needed].sort()) {
    const absent = !target.schemas.has(s) || droppedSchemas.includes(s);
    if (!absent || cat.createdSchemas.has(s)) continue;
    preamble.push(...(s === 'public' ? publicSchema(versionNum) : [`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(s)};`]));
  }
  // The database's properties are read from the target while the dump loads.
  const postamble = started(
    propertiesPostamble(ctx, cfg.dest, { created: !target.exists, apply: cfg.applyDatabaseProperties, props: manifest?.databaseProperties }).then((props) => [
      ...deps.foreignKeys.map((f) => f.add),
      ...props,
    ]),
  );

  // 4. The whole stream, filtered, in one transaction.
  // A restored table's foreign key to a table the target keeps is restored (and validated in the transaction).
  const filter = new SelectiveFilter(plan, cat, (k) => target.tables.has(k) && !droppedSchemas.includes((JSON.parse(k) as string[])[0]!));
  const expectTables = manifest ? manifest.tables.filter((t) => plan.tables.has(key(t.schema, t.name))) : undefined;
  const counts = countsAhead(ctx, cfg.dest, expectTables?.length);
  const res = await namingLockHolders(
    cfg.dest,
    cfg.lockTimeoutMs,
    loadInto(ctx, located, o.secrets, cfg.dest, {
      onInputEnd: counts.open,
      preamble,
      postamble,
      server,
      noOwner: cfg.noOwner,
      opened: await reopened,
      rewrite: filter.rewrite,
      expect: manifest ? { size: manifest.sizes.stored, sha256: manifest.sha256, tables: expectTables! } : undefined,
    }),
  ).catch(async (e: unknown) => {
    await counts.close();
    throw e;
  });
  made.loaded = true;
  const expected = expectTables ?? res.tables;
  const diffs = await compareCounts(ctx, cfg.dest, expected, counts.ahead());
  const total = expected.reduce((s, t) => s + t.rows, 0);
  const tables = [...plan.tables.values()].map((t) => sqlName(t.schema, t.name)).sort();
  const summary = {
    restored: located.display,
    into: dbName,
    selective: true,
    tables: tables.length,
    tableNames: tables,
    schemas: [...plan.schemas].sort(),
    replaced: [...droppedSchemas.map((s) => `schema ${s}`), ...replaced.map((t) => sqlName(t.schema, t.name))],
    foreignKeysRecreated: deps.foreignKeys.length,
    skipped: filter.skipped,
    rows: total,
    sql: formatBytes(res.sqlBytes),
    duration: formatDuration(res.durationMs),
    safetyBackup: safetyKey,
    mismatches: diffs.length,
  };
  for (const s of filter.skipped) process.stderr.write(`left out: ${s}\n`);
  if (cfg.json) ctx.out(JSON.stringify({ ...summary, differences: diffs }) + '\n');
  else {
    ctx.out(
      `restored ${tables.length} table(s) of ${located.display} into "${dbName}"${plan.schemas.size ? ` (schema ${[...plan.schemas].sort().join(', ')} whole)` : ''}: ` +
        `${tables.slice(0, 8).join(', ')}${tables.length > 8 ? `, ... (${tables.length - 8} more)` : ''}; ${total} rows in ${formatDuration(res.durationMs)}` +
        `${filter.skipped.length ? `; ${filter.skipped.length} left out (foreign keys or attachments to tables not restored nor in the target, listed above)` : ''}` +
        `${diffs.length ? `; ${diffs.length} row-count mismatch(es)` : '; row counts match'}\n`,
    );
  }
  if (diffs.length) throw new VerifyError('ROW_COUNTS', `row counts after restore differ:\n  ${diffs.join('\n  ')}`);
  ctx.log.info(summary, 'selective restore complete');
}
