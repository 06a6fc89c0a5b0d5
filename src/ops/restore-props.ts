/**
 * The restore's side of database properties (dbprops.ts): create the target like the source
 * (or stop with exit 2 naming what this cluster lacks), the statements that apply owner, ACL,
 * settings, comment and security labels inside the restore's transaction, and dropping a
 * database the restore created when the restore fails.
 */
import type { Context } from '../support/context.js';
import type { ConnInfo } from '../pg/conn.js';
import { ADMIN_TIMEOUT_MS, createDatabaseWith, databaseExists, dropDatabase, explainPg, queryClusterNames, queryDatabaseProperties, queryServerInfo, quoteIdent, serverInfo, withClient, DbError, type ServerInfo } from '../pg/db.js';
import { createClauses, isLocaleError, propertyStatements, type CreateChoice, type DatabaseProperties } from '../model/dbprops.js';
import { RestoreError, UsageError, messageOf } from '../support/errors.js';

/** A database this restore created: dropped again unless the load committed. */
export interface CreatedDb {
  admin?: ConnInfo;
  name?: string;
  /** The load committed: from here on the database stays. */
  loaded?: boolean;
  /** Tablespaces created before a _globals restore's transaction (tablespaces.ts). */
  tablespaces?: string[];
  tablespaceAdmin?: ConnInfo;
}

const CHOOSE = 'choose another with --db-encoding ENC and/or --db-locale LOCALE, or --create-with-defaults for the cluster\'s defaults';

function describeSource(p: DatabaseProperties): string {
  const loc = p.localeProvider === 'libc' ? `LC_COLLATE "${p.collate}", LC_CTYPE "${p.ctype}"` : `${p.localeProvider} locale "${p.locale}" (LC_COLLATE "${p.collate}", LC_CTYPE "${p.ctype}")`;
  return `encoding ${p.encoding}, ${loc}`;
}

/**
 * CREATE DATABASE `name` on the cluster of `admin` with the source's encoding and locale (or
 * `choice`). When the cluster lacks them, nothing is created and a usage error (exit 2) says
 * what is missing and which flags choose otherwise.
 */
export async function createTargetDatabase(ctx: Context, admin: ConnInfo, name: string, props: DatabaseProperties | undefined, choice: CreateChoice, made: CreatedDb): Promise<ServerInfo> {
  const wrap = (e: unknown) => (e instanceof DbError ? new RestoreError('CREATE', `cannot create database "${name}": ${e.message}`, { cause: e }) : e);
  // One connection for the server's version, its tablespaces and the CREATE. Outcomes leave
  // withClient as values: it would take any other error for a connection problem.
  type Outcome = { server: ServerInfo } & ({ problem: string } | { notes: string[]; describe: string; error?: unknown });
  let creating = false;
  const out: Outcome = await withClient(admin, ctx.signal, async (c): Promise<Outcome> => {
    const server = await queryServerInfo(c);
    const names = props?.tablespace ? await queryClusterNames(c).catch(() => undefined) : undefined;
    const plan = createClauses(props, server.versionNum, choice, names?.tablespaces);
    if ('problem' in plan) return { server, problem: plan.problem };
    for (const n of plan.notes) ctx.log.warn({ database: name }, n);
    if (!props && !choice.encoding && !choice.locale) {
      ctx.log.info({ database: name }, 'the backup records no database properties (a file, or a manifest from an older pgbackup): creating the database with the cluster\'s defaults');
    }
    creating = true;
    try {
      await c.query(`CREATE DATABASE ${quoteIdent(name)} ${plan.clauses.join(' ')}`);
      return { server, notes: plan.notes, describe: plan.describe };
    } catch (e) {
      return { server, notes: plan.notes, describe: plan.describe, error: e };
    }
  }).catch((e) => {
    if (creating && ctx.signal.aborted) {
      // The server may have finished CREATE DATABASE before the connection closed.
      made.admin = admin;
      made.name = name;
    }
    throw wrap(e);
  });
  const { server } = out;
  if ('problem' in out) {
    throw new UsageError(`cannot create database "${name}" like the source on this server (PostgreSQL ${server.version}): ${out.problem}; nothing was changed. ${CHOOSE}`);
  }
  if (out.error !== undefined) {
    const e = out.error instanceof DbError ? out.error : explainPg(out.error, admin);
    if (ctx.signal.aborted) {
      // The server may have finished CREATE DATABASE before the connection closed.
      made.admin = admin;
      made.name = name;
      throw e;
    }
    const pgCode = e.pgCode;
    const msg = messageOf(e.cause ? e.cause : e);
    if (isLocaleError(pgCode, messageOf(e))) {
      const what = props && !choice.defaults ? `as the source was (${describeSource(props)})` : `with ${out.describe}`;
      throw new UsageError(`this server cannot create database "${name}" ${what}: ${msg}. Nothing was changed. Install the locale on the target server, or ${CHOOSE}`);
    }
    throw wrap(e);
  }
  made.admin = admin;
  made.name = name;
  ctx.log.info({ database: name, with: out.describe }, 'created the target database');
  return server;
}

/**
 * Statements for the restore's transaction that give the target the source's owner, ACL,
 * settings, comment, security labels and connection limit: always after --create, and with
 * --apply-database-properties into an existing database. Warnings for what this cluster cannot
 * take (missing roles) are logged.
 */
export async function propertiesPostamble(
  ctx: Context,
  dest: ConnInfo,
  o: { created: boolean; apply: boolean; props: DatabaseProperties | undefined; globals?: boolean },
): Promise<string[]> {
  if (o.globals) return [];
  const name = dest.database!;
  if (!o.props) {
    if (o.apply) ctx.log.warn('--apply-database-properties: the backup records no database properties (a file, or a manifest from an older pgbackup); nothing to apply');
    return [];
  }
  if (!o.created && !o.apply) {
    ctx.log.info({ database: name }, "the target keeps its own database properties (owner, ACL, settings, comment); --apply-database-properties applies the source's");
    return [];
  }
  const wrap = (e: unknown) => (e instanceof DbError ? new RestoreError('CONNECT', e.message, { cause: e }) : e);
  // One connection for both.
  const { current, roles } = await withClient(dest, ctx.signal, async (c) => ({ current: await queryDatabaseProperties(c), roles: (await queryClusterNames(c)).roles })).catch((e) => {
    throw wrap(e);
  });
  if (!o.created) {
    const p = o.props;
    const differ = [
      p.encoding !== current.encoding ? `encoding ${current.encoding} (source ${p.encoding})` : '',
      p.collate !== current.collate || p.ctype !== current.ctype ? `LC_COLLATE/LC_CTYPE ${current.collate}/${current.ctype} (source ${p.collate}/${p.ctype})` : '',
      p.localeProvider !== current.localeProvider || (p.locale ?? null) !== (current.locale ?? null) ? `locale provider ${current.localeProvider} ${current.locale ?? ''} (source ${p.localeProvider} ${p.locale ?? ''})` : '',
    ].filter(Boolean);
    if (differ.length) ctx.log.warn({ database: name }, `an existing database keeps its ${differ.join(', ')}: only --create sets them`);
  }
  const plan = propertyStatements(o.props, name, { roles, current });
  for (const w of plan.warnings) ctx.log.warn({ database: name }, w);
  return plan.statements;
}

/** Drop the database a failed restore created (a fresh signal: also after an interruption). */
export async function dropCreated(ctx: Context, made: CreatedDb, why: unknown): Promise<void> {
  if (made.loaded) return;
  if (made.tablespaceAdmin && made.tablespaces?.length) {
    const names = made.tablespaces.splice(0);
    await withClient(made.tablespaceAdmin, AbortSignal.timeout(ADMIN_TIMEOUT_MS), async (c) => {
      for (const n of names.reverse()) {
        try {
          await c.query(`DROP TABLESPACE IF EXISTS ${quoteIdent(n)}`);
          ctx.log.info({ tablespace: n, reason: messageOf(why) }, 'the restore failed: dropped the tablespace it had created');
        } catch (e) {
          ctx.log.error({ tablespace: n, err: messageOf(e) }, 'the restore failed and the tablespace it created could not be dropped; drop it by hand');
        }
      }
    }).catch((e) => ctx.log.error({ tablespaces: names, err: messageOf(e) }, 'the restore failed and the tablespaces it created could not be dropped; drop them by hand'));
  }
  if (!made.admin || !made.name) return;
  const { admin, name } = made;
  made.name = undefined;
  try {
    const signal = AbortSignal.timeout(ADMIN_TIMEOUT_MS);
    // Once more after a short pause: right after an interruption the sessions being killed can
    // still hold the database, or end the first attempt's connection.
    for (let attempt = 1; ; attempt++) {
      try {
        if (await databaseExists(admin, name, signal)) {
          await dropDatabase(admin, name, signal);
          ctx.log.info({ database: name, reason: messageOf(why) }, 'the restore failed: dropped the database it had created');
        }
        break;
      } catch (e) {
        if (attempt >= 3) throw e;
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  } catch (e) {
    ctx.log.error({ database: name, err: messageOf(e) }, 'the restore failed and the database it created could not be dropped; drop it by hand');
  }
}

/**
 * A scratch database (verify --restore-into) like the source: its encoding and locale, else
 * (this cluster lacks the locale) its encoding with the C locale, which fits every encoding.
 * A SQL_ASCII or LATIN1 dump does not load into a UTF8 database as it is.
 */
export async function createScratchLike(ctx: Context, admin: ConnInfo, name: string, props: DatabaseProperties | undefined): Promise<void> {
  const plain = ['TEMPLATE template0'];
  if (!props) return createDatabaseWith(admin, name, plain, ctx.signal);
  const server = await serverInfo(admin, ctx.signal);
  const like = createClauses(props, server.versionNum, {});
  if (!('problem' in like)) {
    try {
      return await createDatabaseWith(admin, name, like.clauses, ctx.signal);
    } catch (e) {
      if (!(e instanceof DbError) || !isLocaleError(e.pgCode, messageOf(e))) throw e;
    }
  }
  ctx.log.warn({ database: name, source: describeSource(props) }, "this server lacks the source's locale: the scratch database gets the source's encoding with the C locale");
  const c = createClauses(props, server.versionNum, { locale: 'C' });
  await createDatabaseWith(admin, name, 'problem' in c ? plain : c.clauses, ctx.signal);
}
