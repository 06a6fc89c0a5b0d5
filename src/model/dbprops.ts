/**
 * Database-level properties: what pg_dump (without --create) leaves out. Recorded at backup in
 * the manifest (`databaseProperties`), applied by restore: the encoding and locale when it
 * creates the database, the rest (owner, ACL, settings, comment, security labels, connection
 * limit) as statements inside the restore's transaction. Pure: the queries are in db.ts.
 */
import { z } from 'zod';

export const databasePropertiesSchema = z.object({
  /** pg_encoding_to_char(encoding), e.g. "UTF8", "LATIN1", "SQL_ASCII". */
  encoding: z.string(),
  collate: z.string(),
  ctype: z.string(),
  /** libc (servers before 15 have no other), icu (15+), builtin (17+). */
  localeProvider: z.enum(['libc', 'icu', 'builtin']),
  /** The provider's locale: daticulocale (15, 16) or datlocale (17+); null for libc. */
  locale: z.string().nullable(),
  /** daticurules (16+). */
  icuRules: z.string().nullable(),
  owner: z.string(),
  /** datacl as text; null is the default ACL. */
  acl: z.string().nullable(),
  /** datacl exploded; null is the default ACL (owner: all, PUBLIC: CONNECT and TEMPORARY). */
  privileges: z.array(z.object({ grantee: z.string().nullable(), grantor: z.string(), privilege: z.string(), grantable: z.boolean() })).nullable(),
  /** pg_db_role_setting rows for this database: role null for ALTER DATABASE ... SET. */
  settings: z.array(z.object({ role: z.string().nullable(), name: z.string(), value: z.string() })),
  comment: z.string().nullable(),
  securityLabels: z.array(z.object({ provider: z.string(), label: z.string() })),
  connectionLimit: z.number(),
  isTemplate: z.boolean(),
  allowConnections: z.boolean(),
  /** The database's default tablespace when it is not pg_default. */
  tablespace: z.string().nullable(),
});

export type DatabaseProperties = z.infer<typeof databasePropertiesSchema>;

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** A string literal that means the same whatever standard_conforming_strings is. */
export function quoteLiteral(s: string): string {
  const q = s.replace(/'/g, "''");
  return s.includes('\\') ? `E'${q.replace(/\\/g, '\\\\')}'` : `'${q}'`;
}

/** GUCs whose values are lists of quoted elements (pg_dump's variable_is_guc_list_quote). */
const LIST_QUOTE = new Set(['local_preload_libraries', 'search_path', 'session_preload_libraries', 'shared_preload_libraries', 'temp_tablespaces', 'unix_socket_directories']);

/** A list GUC's stored value split as PostgreSQL's SplitGUCList does (double quotes kept out). */
export function splitGucList(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = value.length;
  const ws = (c: string | undefined) => c !== undefined && /\s/.test(c);
  while (ws(value[i])) i++;
  if (i >= n) return out;
  for (;;) {
    let item = '';
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) return out; // unterminated: as SplitGUCList, give up
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            item += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        item += value[i++];
      }
    } else {
      while (i < n && value[i] !== ',' && !ws(value[i])) item += value[i++];
    }
    while (ws(value[i])) i++;
    out.push(item);
    if (i >= n) return out;
    if (value[i] !== ',') return out;
    i++;
    while (ws(value[i])) i++;
  }
}

function gucName(name: string): string {
  return /^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)*$/.test(name) ? name : quoteIdent(name);
}

/** `name TO value` as pg_dump writes a stored setting. */
export function settingClause(name: string, value: string): string {
  const v = LIST_QUOTE.has(name.toLowerCase()) ? splitGucList(value).map(quoteLiteral).join(', ') || "''" : quoteLiteral(value);
  return `${gucName(name)} TO ${v}`;
}

/** A statement that warns instead of failing the restore (settings a server lacks, label providers not loaded). */
export function tolerant(stmt: string, what: string): string {
  let tag = 'pgbackup';
  while (stmt.includes(`$${tag}$`)) tag += '_';
  const msg = quoteLiteral(`pgbackup: could not apply ${what}: `);
  return `DO $${tag}$ BEGIN ${stmt}; EXCEPTION WHEN OTHERS THEN RAISE WARNING '%', ${msg} || SQLERRM; END $${tag}$;`;
}

type Privilege = NonNullable<DatabaseProperties['privileges']>[number];

/** The ACL as explicit entries (the default one spelled out). */
function effectiveAcl(p: Pick<DatabaseProperties, 'privileges' | 'owner'>): Privilege[] {
  if (p.privileges) return p.privileges;
  return [
    { grantee: null, grantor: p.owner, privilege: 'CONNECT', grantable: false },
    { grantee: null, grantor: p.owner, privilege: 'TEMPORARY', grantable: false },
    ...['CREATE', 'CONNECT', 'TEMPORARY'].map((privilege) => ({ grantee: p.owner, grantor: p.owner, privilege, grantable: false })),
  ];
}

function aclKey(acl: Privilege[]): string {
  return acl
    .map((a) => JSON.stringify([a.grantee, a.grantor, a.privilege, a.grantable]))
    .sort()
    .join('\n');
}

export interface TargetFacts {
  /** Roles that exist on the target cluster. */
  roles: Set<string>;
  /** The target database as it is now (freshly created, or the one --clean replaces). */
  current: DatabaseProperties;
}

export interface PropertyPlan {
  /** To run inside the restore's transaction, in order. */
  statements: string[];
  /** What cannot be reproduced on this target (missing roles, ...). */
  warnings: string[];
}

/**
 * Statements that turn the target database `db` (now `t.current`) into the source's `p`:
 * owner, ACL, settings (database-wide and per role), comment, security labels, connection
 * limit. Encoding, locale and tablespace are set when the database is created (createClauses);
 * IS_TEMPLATE and ALLOW_CONNECTIONS are recorded but not applied (a restored copy should stay
 * an ordinary, connectable database).
 */
export function propertyStatements(p: DatabaseProperties, db: string, t: TargetFacts): PropertyPlan {
  const out: string[] = [];
  const warnings: string[] = [];
  const D = quoteIdent(db);
  const cur = t.current;
  const has = (r: string) => t.roles.has(r);

  // Owner first: the ACL below is the new owner's.
  let owner = cur.owner;
  if (p.owner !== cur.owner) {
    if (has(p.owner)) {
      out.push(`ALTER DATABASE ${D} OWNER TO ${quoteIdent(p.owner)};`);
      owner = p.owner;
    } else warnings.push(`owner: role "${p.owner}" does not exist on the target; the database stays owned by "${cur.owner}"`);
  }

  // ACL: the source's entries with its owner read as ours; skipped when already equal.
  const mapRole = (r: string) => (r === p.owner ? owner : r);
  const want = effectiveAcl(p).map((a) => ({ ...a, grantee: a.grantee === null ? null : mapRole(a.grantee), grantor: mapRole(a.grantor) }));
  // ALTER DATABASE ... OWNER TO rewrites the old owner's entries as the new owner's.
  const mapCur = (r: string) => (r === cur.owner ? owner : r);
  const now = effectiveAcl({ privileges: cur.privileges, owner }).map((a) => ({ ...a, grantee: a.grantee === null ? null : mapCur(a.grantee), grantor: mapCur(a.grantor) }));
  if (aclKey(want) !== aclKey(now)) {
    const revokeFrom = new Set<string | null>([null, owner, ...now.map((a) => a.grantee)]);
    for (const g of revokeFrom) out.push(`REVOKE ALL ON DATABASE ${D} FROM ${g === null ? 'PUBLIC' : quoteIdent(g)} CASCADE;`);
    const groups = new Map<string, { grantee: string | null; grantor: string; grantable: boolean; privs: string[] }>();
    for (const a of want) {
      if (a.grantee !== null && !has(a.grantee)) {
        warnings.push(`privileges: role "${a.grantee}" does not exist on the target; its ${a.privilege} on the database is not granted`);
        continue;
      }
      const k = JSON.stringify([a.grantee, a.grantor, a.grantable]);
      const g = groups.get(k) ?? { grantee: a.grantee, grantor: a.grantor, grantable: a.grantable, privs: [] };
      g.privs.push(a.privilege);
      groups.set(k, g);
    }
    for (const g of groups.values()) {
      const grant = `GRANT ${g.privs.join(', ')} ON DATABASE ${D} TO ${g.grantee === null ? 'PUBLIC' : quoteIdent(g.grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''};`;
      // A superuser grants as the owner; another grantor (holding the grant option) grants as itself.
      if (g.grantor === owner || !has(g.grantor)) out.push(grant);
      else out.push(`SET SESSION AUTHORIZATION ${quoteIdent(g.grantor)};`, grant, 'RESET SESSION AUTHORIZATION;');
    }
  }

  // Settings: reset what the source lacks, set what differs.
  const key = (s: { role: string | null; name: string }) => JSON.stringify([s.role, s.name.toLowerCase()]);
  const wantSet = new Map(p.settings.map((s) => [key(s), s]));
  const target = (role: string | null) => (role === null ? `ALTER DATABASE ${D}` : `ALTER ROLE ${quoteIdent(role)} IN DATABASE ${D}`);
  for (const s of cur.settings) {
    if (!wantSet.has(key(s))) out.push(tolerant(`${target(s.role)} RESET ${gucName(s.name)}`, `RESET ${s.name}${s.role ? ` for role ${s.role}` : ''}`));
  }
  const missingRoles = new Set<string>();
  for (const s of p.settings) {
    const role = s.role;
    if (role !== null && !has(role)) {
      missingRoles.add(role);
      continue;
    }
    const c = cur.settings.find((x) => key(x) === key({ role, name: s.name }));
    if (c && c.value === s.value) continue;
    out.push(tolerant(`${target(role)} SET ${settingClause(s.name, s.value)}`, `setting ${s.name}${role ? ` for role ${role}` : ''}`));
  }
  for (const r of missingRoles) warnings.push(`settings: role "${r}" does not exist on the target; its settings in this database are not applied`);

  if ((p.comment ?? null) !== (cur.comment ?? null)) out.push(`COMMENT ON DATABASE ${D} IS ${p.comment === null ? 'NULL' : quoteLiteral(p.comment)};`);

  for (const l of cur.securityLabels) {
    if (!p.securityLabels.some((x) => x.provider === l.provider)) {
      out.push(tolerant(`SECURITY LABEL FOR ${quoteIdent(l.provider)} ON DATABASE ${D} IS NULL`, `removing the ${l.provider} security label`));
    }
  }
  for (const l of p.securityLabels) {
    if (cur.securityLabels.some((x) => x.provider === l.provider && x.label === l.label)) continue;
    out.push(tolerant(`SECURITY LABEL FOR ${quoteIdent(l.provider)} ON DATABASE ${D} IS ${quoteLiteral(l.label)}`, `the ${l.provider} security label`));
  }

  if (p.connectionLimit !== cur.connectionLimit) out.push(`ALTER DATABASE ${D} CONNECTION LIMIT ${Math.trunc(p.connectionLimit)};`);
  return { statements: out, warnings };
}

/** How the restore creates a database: from the source's properties, with the user's overrides. */
export interface CreateChoice {
  encoding?: string | undefined;
  /** A libc locale for LC_COLLATE and LC_CTYPE (provider libc). */
  locale?: string | undefined;
  /** Use the cluster's defaults (template0's) for what was not given. */
  defaults?: boolean;
}

/**
 * The clauses after `CREATE DATABASE name` for a server of `serverVersionNum`, or the reason
 * this server cannot create it so (for a usage error). Without properties (no manifest, an old
 * one) only the overrides are used.
 */
export function createClauses(p: DatabaseProperties | undefined, serverVersionNum: number, choice: CreateChoice, tablespaces?: Set<string>): { clauses: string[]; describe: string; notes: string[] } | { problem: string } {
  const clauses = ['TEMPLATE template0'];
  const notes: string[] = [];
  const src = choice.defaults ? undefined : p;
  const encoding = choice.encoding ?? src?.encoding;
  if (encoding) clauses.push(`ENCODING ${quoteLiteral(encoding)}`);
  if (choice.locale) {
    clauses.push(`LC_COLLATE ${quoteLiteral(choice.locale)}`, `LC_CTYPE ${quoteLiteral(choice.locale)}`);
    if (serverVersionNum >= 150000) clauses.push('LOCALE_PROVIDER libc');
  } else if (src) {
    clauses.push(`LC_COLLATE ${quoteLiteral(src.collate)}`, `LC_CTYPE ${quoteLiteral(src.ctype)}`);
    if (src.localeProvider === 'icu') {
      if (serverVersionNum < 150000) return { problem: `the source database uses the ICU locale provider (locale "${src.locale}"), which servers before PostgreSQL 15 lack` };
      clauses.push('LOCALE_PROVIDER icu');
      if (src.locale) clauses.push(`ICU_LOCALE ${quoteLiteral(src.locale)}`);
      if (src.icuRules) {
        if (serverVersionNum < 160000) return { problem: `the source database has ICU rules (${src.icuRules}), which servers before PostgreSQL 16 lack` };
        clauses.push(`ICU_RULES ${quoteLiteral(src.icuRules)}`);
      }
    } else if (src.localeProvider === 'builtin') {
      if (serverVersionNum < 170000) return { problem: `the source database uses the builtin locale provider (locale "${src.locale}"), which servers before PostgreSQL 17 lack` };
      clauses.push('LOCALE_PROVIDER builtin', `BUILTIN_LOCALE ${quoteLiteral(src.locale ?? 'C')}`);
    } else if (serverVersionNum >= 150000) clauses.push('LOCALE_PROVIDER libc');
  }
  if (p?.tablespace) {
    if (tablespaces?.has(p.tablespace)) clauses.push(`TABLESPACE ${quoteIdent(p.tablespace)}`);
    else notes.push(`the source database's default tablespace "${p.tablespace}" does not exist on the target; using the cluster's default`);
  }
  return { clauses, describe: clauses.slice(1).join(' '), notes };
}

/** PostgreSQL errors of CREATE DATABASE that mean "this cluster lacks that encoding or locale". */
export function isLocaleError(code: string | undefined, message: string): boolean {
  if (code && ['22023', '42704', '42809', '0A000'].includes(code)) return true;
  return /locale|collat|encoding|ICU/i.test(message) && code !== '42501' && code !== '42P04';
}
