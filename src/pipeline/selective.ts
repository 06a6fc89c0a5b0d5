/**
 * Selective restore: which statements of a pg_dump plain stream belong to the selected tables
 * and schemas. Each statement is classified by what it acts on, read from the statement itself
 * (pg_dump's entry headers give the type, but their names are ambiguous when a name holds a
 * space, a dot or "; Type:"): `CREATE TABLE s.t`, `ALTER TABLE ONLY s.t ...`, `CREATE INDEX i ON
 * s.t`, `CREATE TRIGGER x ... ON s.t`, `COPY s.t`, `GRANT ... ON TABLE s.t`, `COMMENT ON COLUMN
 * s.t.c`, `SELECT pg_catalog.setval('s.seq', ...)`, ... Names are compared decoded from the
 * dump's encoding, as the manifest spells them.
 *
 * Two passes over the head of the stream, one over the rest: `Catalog` collects, from the
 * pre-data (read once before the restore and again during it), what decides the rest: the
 * tables, which are partitions of which, which sequences belong to which table; `planSelection`
 * turns the patterns into the set of tables restored; `SelectiveFilter` is the reader's rewrite.
 */
import type { Entry, Rewrite, Statement } from './dumpreader.js';
import { decodeName } from './pgencoding.js';
import { matchesTable, sqlName, type Selection } from '../model/selection.js';

type Tok = { k: 'w' | 'q' | 'p' | 's'; v: string };

/** Words, quoted identifiers, punctuation and string literals at the start of a statement (latin1 text). */
export function tokens(text: string, max = 400): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = text.length;
  while (i < n && out.length < max) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
    } else if (c === '/' && text[i + 1] === '*') {
      const e = text.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
    } else if (c === '"' || c === "'") {
      let v = '';
      let j = i + 1;
      for (;;) {
        const k = text.indexOf(c, j);
        if (k < 0) return out;
        v += text.slice(j, k);
        if (text[k + 1] === c) {
          v += c;
          j = k + 2;
        } else {
          i = k + 1;
          break;
        }
      }
      out.push({ k: c === '"' ? 'q' : 's', v });
    } else if (/[A-Za-z_\x80-\xff]/.test(c)) {
      const m = /^[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*/.exec(text.slice(i, i + 256))!;
      out.push({ k: 'w', v: m[0].replace(/[A-Z]+/g, (x) => x.toLowerCase()) });
      i += m[0].length;
    } else {
      out.push({ k: 'p', v: c });
      i++;
    }
  }
  return out;
}

const isName = (t: Tok | undefined) => t !== undefined && (t.k === 'w' || t.k === 'q');

/** A dotted name at tokens[i]: its parts (raw) and the index after it. */
function dotted(ts: Tok[], i: number): { parts: string[]; next: number } | null {
  if (!isName(ts[i])) return null;
  const parts = [ts[i]!.v];
  let j = i + 1;
  while (ts[j]?.k === 'p' && ts[j]!.v === '.' && isName(ts[j + 1])) {
    parts.push(ts[j + 1]!.v);
    j += 2;
  }
  return { parts, next: j };
}

/** Index of the first word `w` at parenthesis depth 0, from `from`. */
function findWord(ts: Tok[], w: string, from: number): number {
  let depth = 0;
  for (let i = from; i < ts.length; i++) {
    const t = ts[i]!;
    if (t.k === 'p' && t.v === '(') depth++;
    else if (t.k === 'p' && t.v === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0 && t.k === 'w' && t.v === w) return i;
  }
  return -1;
}

const word = (ts: Tok[], i: number, ...ws: string[]) => ts[i]?.k === 'w' && ws.includes(ts[i].v);

/** A relation-like name: [schema, name] (raw, undecoded). */
export type Raw2 = [string, string];

export type Target =
  | { k: 'keep' }
  | { k: 'rel'; rel: Raw2; definesIndex?: Raw2; identitySeq?: Raw2; partitioned?: boolean; creates?: boolean }
  | { k: 'attach'; parent: Raw2; child: Raw2 }
  | { k: 'fk'; rel: Raw2; ref: Raw2; constraint: string }
  | { k: 'indexAttach'; parent: Raw2; child: Raw2 }
  | { k: 'index'; idx: Raw2 }
  | { k: 'seq'; seq: Raw2; ownedBy?: Raw2; creates?: boolean }
  | { k: 'schema'; name: string; creates?: boolean }
  | { k: 'extension'; name: string; schema?: string }
  | { k: 'other' };

const two = (p: string[] | undefined): Raw2 | null => (p && p.length === 2 ? [p[0]!, p[1]!] : null);

/** What a statement acts on (see the module comment). */
export function classify(text: string): Target {
  const ts = tokens(text);
  const w0 = ts[0]?.k === 'w' ? ts[0].v : '';
  if (w0 === 'set') return { k: 'keep' };
  if (w0 === 'select') {
    // SELECT pg_catalog.set_config('search_path', ...) / SELECT pg_catalog.setval('s.seq', ...)
    const fn = dotted(ts, 1);
    const f = fn?.parts[fn.parts.length - 1];
    if (f === 'set_config') return { k: 'keep' };
    if (f === 'setval' && fn && ts[fn.next]?.v === '(' && ts[fn.next + 1]?.k === 's') {
      const inner = dotted(tokens(ts[fn.next + 1]!.v), 0);
      const seq = two(inner?.parts);
      if (seq) return { k: 'seq', seq };
    }
    return { k: 'other' };
  }
  if (w0 === 'copy') {
    const r = two(dotted(ts, 1)?.parts);
    return r ? { k: 'rel', rel: r } : { k: 'other' };
  }
  if (w0 === 'create') {
    let i = 1;
    if (word(ts, i, 'or') && word(ts, i + 1, 'replace')) i += 2;
    while (word(ts, i, 'unlogged', 'foreign', 'temporary', 'temp', 'global', 'local', 'unique', 'constraint')) i++;
    const what = ts[i]?.k === 'w' ? ts[i]!.v : '';
    if (what === 'table') {
      let j = i + 1;
      if (word(ts, j, 'if') && word(ts, j + 1, 'not') && word(ts, j + 2, 'exists')) j += 3;
      const d = dotted(ts, j);
      const r = two(d?.parts);
      if (!r) return { k: 'other' };
      return { k: 'rel', rel: r, creates: true, partitioned: findWord(ts, 'partition', d!.next) >= 0 && findWord(ts, 'by', d!.next) >= 0 };
    }
    if (what === 'index') {
      const on = findWord(ts, 'on', i + 1);
      if (on < 0) return { k: 'other' };
      const nameTok = ts[on - 1];
      let j = on + 1;
      if (word(ts, j, 'only')) j++;
      const r = two(dotted(ts, j)?.parts);
      if (!r) return { k: 'other' };
      return { k: 'rel', rel: r, ...(nameTok && isName(nameTok) ? { definesIndex: [r[0], nameTok.v] as Raw2 } : {}) };
    }
    if (what === 'trigger' || what === 'policy') {
      const on = findWord(ts, 'on', i + 2);
      const r = on >= 0 ? two(dotted(ts, on + 1)?.parts) : null;
      return r ? { k: 'rel', rel: r } : { k: 'other' };
    }
    if (what === 'rule') {
      const on = findWord(ts, 'on', i + 2);
      const to = on >= 0 ? findWord(ts, 'to', on + 1) : -1;
      const r = to >= 0 ? two(dotted(ts, to + 1)?.parts) : null;
      return r ? { k: 'rel', rel: r } : { k: 'other' };
    }
    if (what === 'statistics') {
      const from = findWord(ts, 'from', i + 1);
      const r = from >= 0 ? two(dotted(ts, from + 1)?.parts) : null;
      return r ? { k: 'rel', rel: r } : { k: 'other' };
    }
    if (what === 'sequence') {
      const r = two(dotted(ts, i + 1)?.parts);
      return r ? { k: 'seq', seq: r, creates: true } : { k: 'other' };
    }
    if (what === 'schema') {
      let j = i + 1;
      if (word(ts, j, 'if') && word(ts, j + 1, 'not') && word(ts, j + 2, 'exists')) j += 3;
      return isName(ts[j]) ? { k: 'schema', name: ts[j]!.v, creates: true } : { k: 'other' };
    }
    if (what === 'extension') {
      let j = i + 1;
      if (word(ts, j, 'if') && word(ts, j + 1, 'not') && word(ts, j + 2, 'exists')) j += 3;
      if (!isName(ts[j])) return { k: 'other' };
      const s = findWord(ts, 'schema', j + 1);
      return { k: 'extension', name: ts[j]!.v, ...(s >= 0 && isName(ts[s + 1]) ? { schema: ts[s + 1]!.v } : {}) };
    }
    return { k: 'other' };
  }
  if (w0 === 'alter') {
    let i = 1;
    if (word(ts, i, 'foreign') || word(ts, i, 'materialized')) i++;
    const what = ts[i]?.k === 'w' ? ts[i]!.v : '';
    let j = i + 1;
    if (word(ts, j, 'if') && word(ts, j + 1, 'exists')) j += 2;
    if (word(ts, j, 'only')) j++;
    const d = dotted(ts, j);
    if (what === 'table' || what === 'view') {
      const r = two(d?.parts);
      if (!r) return { k: 'other' };
      const k = d!.next;
      if (word(ts, k, 'attach') && word(ts, k + 1, 'partition')) {
        const c = two(dotted(ts, k + 2)?.parts);
        return c ? { k: 'attach', parent: r, child: c } : { k: 'other' };
      }
      if (word(ts, k, 'add') && word(ts, k + 1, 'constraint') && isName(ts[k + 2])) {
        const name = ts[k + 2]!.v;
        if (word(ts, k + 3, 'foreign')) {
          const ref = findWord(ts, 'references', k + 4);
          const rr = ref >= 0 ? two(dotted(ts, ref + 1)?.parts) : null;
          if (rr) return { k: 'fk', rel: r, ref: rr, constraint: name };
        }
        if (word(ts, k + 3, 'primary', 'unique', 'exclude')) return { k: 'rel', rel: r, definesIndex: [r[0], name] };
      }
      const g = findWord(ts, 'generated', k);
      if (g >= 0 && word(ts, g - 1, 'add')) {
        // ( SEQUENCE NAME s.seq ... ): inside the parentheses.
        const sn = ts.findIndex((x, n) => n > g && x.k === 'w' && x.v === 'sequence');
        const seq = sn >= 0 && word(ts, sn + 1, 'name') ? two(dotted(ts, sn + 2)?.parts) : null;
        if (seq) return { k: 'rel', rel: r, identitySeq: seq };
      }
      return { k: 'rel', rel: r };
    }
    if (what === 'index') {
      const r = two(d?.parts);
      if (!r) return { k: 'other' };
      if (word(ts, d!.next, 'attach') && word(ts, d!.next + 1, 'partition')) {
        const c = two(dotted(ts, d!.next + 2)?.parts);
        return c ? { k: 'indexAttach', parent: r, child: c } : { k: 'other' };
      }
      return { k: 'index', idx: r };
    }
    if (what === 'sequence') {
      const r = two(d?.parts);
      if (!r) return { k: 'other' };
      if (word(ts, d!.next, 'owned') && word(ts, d!.next + 1, 'by')) {
        const o = dotted(ts, d!.next + 2)?.parts;
        if (o && o.length === 3) return { k: 'seq', seq: r, ownedBy: [o[0]!, o[1]!] };
      }
      return { k: 'seq', seq: r };
    }
    if (what === 'schema') return isName(ts[i + 1]) ? { k: 'schema', name: ts[i + 1]!.v } : { k: 'other' };
    if (what === 'extension') return isName(ts[i + 1]) ? { k: 'extension', name: ts[i + 1]!.v } : { k: 'other' };
    return { k: 'other' };
  }
  if (w0 === 'comment' || w0 === 'security' || w0 === 'grant' || w0 === 'revoke') {
    // COMMENT ON kind name | SECURITY LABEL [FOR p] ON kind name | GRANT/REVOKE privs ON kind name
    const on = findWord(ts, 'on', 1);
    if (on < 0) return { k: 'other' };
    let i = on + 1;
    if (word(ts, i, 'foreign') && word(ts, i + 1, 'table')) i++;
    else if (word(ts, i, 'materialized') && word(ts, i + 1, 'view')) i++;
    const what = ts[i]?.k === 'w' ? ts[i]!.v : '';
    if (what === 'table' || what === 'view' || what === 'column') {
      const p = dotted(ts, i + 1)?.parts;
      const r = p && (what === 'column' ? p.length === 3 : p.length === 2) ? ([p[0]!, p[1]!] as Raw2) : null;
      return r ? { k: 'rel', rel: r } : { k: 'other' };
    }
    if (what === 'constraint' || what === 'trigger' || what === 'policy' || what === 'rule') {
      const on2 = findWord(ts, 'on', i + 2);
      if (on2 < 0 || word(ts, on2 + 1, 'domain')) return { k: 'other' };
      const r = two(dotted(ts, on2 + 1)?.parts);
      return r ? { k: 'rel', rel: r } : { k: 'other' };
    }
    if (what === 'index') {
      const r = two(dotted(ts, i + 1)?.parts);
      return r ? { k: 'index', idx: r } : { k: 'other' };
    }
    if (what === 'sequence') {
      const r = two(dotted(ts, i + 1)?.parts);
      return r ? { k: 'seq', seq: r } : { k: 'other' };
    }
    if (what === 'schema') return isName(ts[i + 1]) ? { k: 'schema', name: ts[i + 1]!.v } : { k: 'other' };
    if (what === 'extension') return isName(ts[i + 1]) ? { k: 'extension', name: ts[i + 1]!.v } : { k: 'other' };
    return { k: 'other' };
  }
  return { k: 'other' };
}

const key = (s: string, n: string) => JSON.stringify([s, n]);

export interface BackupTable {
  schema: string;
  name: string;
  partitioned: boolean;
}

/**
 * What the pre-data says, names decoded: tables (and whether partitioned), which table each
 * partition is attached to, sequences and the table each belongs to, schemas created.
 * Fed by `observe` with every statement of the pre-data (the same statements in both passes).
 */
export class Catalog {
  readonly tables = new Map<string, BackupTable>();
  /** partition key -> parent key */
  readonly parentOf = new Map<string, string>();
  readonly sequences = new Map<string, { schema: string; name: string; owner: string | null }>();
  /** Schemas the dump creates (CREATE SCHEMA), and every schema an entry header names. */
  readonly createdSchemas = new Set<string>();
  readonly entrySchemas = new Set<string>();

  constructor(private readonly enc: () => string) {}

  name(raw: string): string {
    return decodeName(Buffer.from(raw, 'latin1'), this.enc());
  }
  key2(r: Raw2): string {
    return key(this.name(r[0]), this.name(r[1]));
  }

  observe(t: Target, entry: Entry | null): void {
    if (entry?.schema) this.entrySchemas.add(this.name(entry.schema));
    if (t.k === 'rel' && t.creates) {
      const [s, n] = [this.name(t.rel[0]), this.name(t.rel[1])];
      this.tables.set(key(s, n), { schema: s, name: n, partitioned: Boolean(t.partitioned) });
    } else if (t.k === 'rel' && t.identitySeq) {
      const [s, n] = [this.name(t.identitySeq[0]), this.name(t.identitySeq[1])];
      this.sequences.set(key(s, n), { schema: s, name: n, owner: this.key2(t.rel) });
    } else if (t.k === 'attach') {
      this.parentOf.set(this.key2(t.child), this.key2(t.parent));
    } else if (t.k === 'seq' && (t.creates || t.ownedBy)) {
      const k = this.key2(t.seq);
      const prev = this.sequences.get(k);
      const [s, n] = [this.name(t.seq[0]), this.name(t.seq[1])];
      this.sequences.set(k, { schema: s, name: n, owner: t.ownedBy ? this.key2(t.ownedBy) : (prev?.owner ?? null) });
    } else if (t.k === 'schema' && t.creates) {
      this.createdSchemas.add(this.name(t.name));
    }
  }
}

/** Where the pre-data ends: the first entry of data or of post-data. */
export function endsPreData(e: Entry): boolean {
  return e.data || ['SEQUENCE SET', 'BLOB', 'BLOBS', 'LARGE OBJECT', 'INDEX', 'FK CONSTRAINT', 'TRIGGER', 'INDEX ATTACH', 'POLICY'].includes(e.type);
}

export interface Plan {
  /** Tables restored (keys), with their decoded names. */
  tables: Map<string, BackupTable>;
  /** Schemas restored whole. */
  schemas: Set<string>;
  /** Sequences restored (keys). */
  sequences: Set<string>;
  /** Schemas whose own entries (CREATE SCHEMA, owner, comment, ACL) are restored. */
  schemaEntries: Set<string>;
  /** --exclude-table patterns that matched nothing. */
  unusedExcludes: string[];
}

/**
 * The selection against the backup's catalog. Problems (a --table or --schema pattern that
 * matches nothing in the backup) come back as messages: nothing has been touched yet.
 * `missingSchemas`: schemas absent from the target (or dropped by the restore), whose own
 * entries come along when a restored table lives in them.
 */
export function planSelection(cat: Catalog, sel: Selection, missingSchemas: (s: string) => boolean): Plan | { problems: string[] } {
  const problems: string[] = [];
  const chosen = new Map<string, BackupTable>();
  for (const p of sel.tables) {
    const m = [...cat.tables.entries()].filter(([, t]) => matchesTable(p, t.schema, t.name));
    if (!m.length) problems.push(`--table ${JSON.stringify(p.text)}: no table in the backup matches it (restore --list shows the backup's tables)`);
    for (const [k, t] of m) chosen.set(k, t);
  }
  const allSchemas = new Set([...cat.createdSchemas, ...cat.entrySchemas]);
  const schemas = new Set<string>();
  for (const p of sel.schemas) {
    const m = [...allSchemas].filter((s) => p.name.test(s));
    if (!m.length) problems.push(`--schema ${JSON.stringify(p.text)}: no schema in the backup matches it (restore --list shows the backup's schemas)`);
    for (const s of m) schemas.add(s);
  }
  if (problems.length) return { problems };
  for (const [k, t] of cat.tables) if (schemas.has(t.schema)) chosen.set(k, t);
  // Partitions come with their partitioned table (at any depth).
  let grew = true;
  while (grew) {
    grew = false;
    for (const [child, parent] of cat.parentOf) {
      if (chosen.has(parent) && !chosen.has(child)) {
        const t = cat.tables.get(child);
        if (t) {
          chosen.set(child, t);
          grew = true;
        }
      }
    }
  }
  const unusedExcludes: string[] = [];
  for (const p of sel.excludeTables) {
    let hit = false;
    for (const [k, t] of chosen) {
      if (matchesTable(p, t.schema, t.name)) {
        chosen.delete(k);
        hit = true;
      }
    }
    if (!hit) unusedExcludes.push(p.text);
  }
  const sequences = new Set<string>();
  for (const [k, s] of cat.sequences) {
    if (s.owner ? chosen.has(s.owner) : schemas.has(s.schema)) sequences.add(k);
  }
  const schemaEntries = new Set(schemas);
  for (const t of chosen.values()) if (missingSchemas(t.schema)) schemaEntries.add(t.schema);
  return { tables: chosen, schemas, sequences, schemaEntries, unusedExcludes };
}

/**
 * The rewrite of a selective restore: keeps the statements of what the plan restores, drops
 * the rest (COPY data with its COPY), and names what it leaves out because it ties a restored
 * table to one that is not: foreign keys, partition and index attachments.
 */
export class SelectiveFilter {
  /** index key -> table key, from CREATE INDEX and PRIMARY KEY / UNIQUE / EXCLUDE constraints. */
  private readonly indexTable = new Map<string, string>();
  private readonly extensions = new Set<string>();
  /** Statements left out because they reach a table not restored (for the summary). */
  readonly skipped: string[] = [];
  readonly kept = { statements: 0 };

  /**
   * `cat`: from the pre-pass over the same stream (it decodes names in that stream's encoding).
   * `staysInTarget`: a table (key) the target has and keeps: a restored table's foreign keys to it are kept.
   */
  constructor(
    private readonly plan: Plan,
    readonly cat: Catalog,
    private readonly staysInTarget: (key: string) => boolean = () => false,
  ) {}

  /**
   * pg_dump sets default_tablespace and default_table_access_method before the entries that need
   * them (before their headers): held here and sent just before the next statement kept, so an
   * object left out never leaves behind a setting naming a tablespace or access method the
   * target lacks.
   */
  private readonly pendingSets = new Map<string, string>();

  readonly rewrite: Rewrite = (st: Statement) => {
    if (st.meta || st.section !== 'body') return undefined;
    const set = /^SET\s+(default_tablespace|default_table_access_method)\s*=/i.exec(st.text);
    if (set) {
      this.pendingSets.set(set[1]!.toLowerCase(), st.text);
      return null;
    }
    const keep = this.decide(classify(st.text), st.entry);
    if (!keep) return null;
    this.kept.statements++;
    // A statement too long to hold streams unchanged (function bodies do not use these settings).
    if (this.pendingSets.size && !st.streamed) {
      const pre = [...this.pendingSets.values()].join('\n');
      this.pendingSets.clear();
      return `${pre}\n${st.text}`;
    }
    return undefined;
  };

  private schemaRule(entry: Entry | null): boolean {
    return entry?.schema ? this.plan.schemas.has(this.cat.name(entry.schema)) : false;
  }

  private relRule(rel: Raw2, entry: Entry | null): boolean {
    const k = this.cat.key2(rel);
    if (this.cat.tables.has(k)) return this.plan.tables.has(k);
    if (this.cat.sequences.has(k)) return this.plan.sequences.has(k);
    const tbl = this.indexTable.get(k);
    if (tbl) return this.plan.tables.has(tbl);
    // A view, materialized view or anything else spelled ALTER TABLE / ON TABLE: by its schema.
    return this.schemaRule(entry);
  }

  private show(r: Raw2): string {
    return sqlName(this.cat.name(r[0]), this.cat.name(r[1]));
  }

  private decide(t: Target, entry: Entry | null): boolean {
    switch (t.k) {
      case 'keep':
        return true;
      case 'rel': {
        if (t.definesIndex) this.indexTable.set(this.cat.key2(t.definesIndex), this.cat.key2(t.rel));
        return this.relRule(t.rel, entry);
      }
      case 'fk': {
        if (!this.relRule(t.rel, entry)) return false;
        const ref = this.cat.key2(t.ref);
        if (this.plan.tables.has(ref) || this.staysInTarget(ref)) return true;
        this.skipped.push(`foreign key ${JSON.stringify(this.cat.name(t.constraint))} of ${this.show(t.rel)}: it references ${this.show(t.ref)}, which is neither restored nor in the target`);
        return false;
      }
      case 'attach': {
        const child = this.cat.key2(t.child);
        if (!this.plan.tables.has(child)) return false;
        if (this.plan.tables.has(this.cat.key2(t.parent))) return true;
        this.skipped.push(`partition ${this.show(t.child)} restored as a table of its own: its partitioned table ${this.show(t.parent)} is not restored`);
        return false;
      }
      case 'indexAttach': {
        const child = this.indexTable.get(this.cat.key2(t.child));
        const parent = this.indexTable.get(this.cat.key2(t.parent));
        if (!child || !this.plan.tables.has(child)) return child ? false : this.schemaRule(entry);
        return Boolean(parent && this.plan.tables.has(parent));
      }
      case 'index': {
        const tbl = this.indexTable.get(this.cat.key2(t.idx));
        return tbl ? this.plan.tables.has(tbl) : this.schemaRule(entry);
      }
      case 'seq': {
        const k = this.cat.key2(t.seq);
        return this.cat.sequences.has(k) ? this.plan.sequences.has(k) : this.schemaRule(entry);
      }
      case 'schema':
        return this.plan.schemaEntries.has(this.cat.name(t.name));
      case 'extension': {
        if (t.schema !== undefined) {
          const keep = this.plan.schemas.has(this.cat.name(t.schema));
          if (keep) this.extensions.add(t.name);
          return keep;
        }
        return this.extensions.has(t.name);
      }
      case 'other':
        return this.schemaRule(entry);
    }
  }
}

/** The pre-pass: statements of the pre-data into a Catalog. */
export function catalogRewrite(cat: Catalog): Rewrite {
  return (st) => {
    if (!st.meta && st.section === 'body') cat.observe(classify(st.text), st.entry);
    return undefined;
  };
}
