/**
 * What a selective restore takes from a backup: `--table SCHEMA.NAME`, `--schema NAME` and
 * `--exclude-table SCHEMA.NAME` patterns, read as pg_dump reads its own: an unquoted part is
 * folded to lower case and may hold the wildcards `*` (any characters) and `?` (one character);
 * a double-quoted part is taken literally (case, dots, spaces, `*` and `?`), with `""` for a
 * double quote inside it. The dot between schema and name is the first one outside quotes.
 */

export interface QualifiedPattern {
  /** As given on the command line. */
  text: string;
  schema: RegExp;
  name: RegExp;
}

export interface SchemaPattern {
  text: string;
  name: RegExp;
}

export interface Selection {
  tables: QualifiedPattern[];
  schemas: SchemaPattern[];
  excludeTables: QualifiedPattern[];
}

/** Split a pattern at its dots outside double quotes, each part turned into an anchored regex. */
function patternParts(text: string): { parts: RegExp[]; problem?: string } {
  const parts: RegExp[] = [];
  let re = '';
  let inQuotes = false;
  let empty = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      if (inQuotes && text[i + 1] === '"') {
        re += '"';
        i++;
        empty = false;
      } else {
        inQuotes = !inQuotes;
        empty = false;
      }
      continue;
    }
    if (!inQuotes && c === '.') {
      if (empty) return { parts, problem: 'has an empty name before a dot' };
      parts.push(new RegExp(`^${re}$`, 's'));
      re = '';
      empty = true;
      continue;
    }
    empty = false;
    if (!inQuotes && c === '*') re += '.*';
    else if (!inQuotes && c === '?') re += '.';
    else {
      const ch = inQuotes ? c : c.replace(/[A-Z]/g, (x) => x.toLowerCase());
      re += ch.replace(/[\\^$.*+?()[\]{}|/-]/g, (x) => `\\${x}`);
    }
  }
  if (inQuotes) return { parts, problem: 'has an unclosed double quote' };
  if (empty) return { parts, problem: text.length ? 'ends with a dot' : 'is empty' };
  parts.push(new RegExp(`^${re}$`, 's'));
  return { parts };
}

/** A --table / --exclude-table pattern: exactly SCHEMA.NAME. */
export function parseQualifiedPattern(option: string, text: string): QualifiedPattern | string {
  const { parts, problem } = patternParts(text);
  if (problem) return `${option} ${JSON.stringify(text)}: ${problem}`;
  if (parts.length === 1) {
    return `${option} ${JSON.stringify(text)}: name the schema too (SCHEMA.NAME, e.g. public.${text}); quote a name that holds a dot: 'public."a.b"'`;
  }
  if (parts.length > 2) return `${option} ${JSON.stringify(text)}: more than one dot outside double quotes (SCHEMA.NAME; quote a name that holds a dot: 'public."a.b"')`;
  return { text, schema: parts[0]!, name: parts[1]! };
}

/** A --schema pattern: one name. */
export function parseSchemaPattern(text: string): SchemaPattern | string {
  const { parts, problem } = patternParts(text);
  if (problem) return `--schema ${JSON.stringify(text)}: ${problem}`;
  if (parts.length !== 1) return `--schema ${JSON.stringify(text)}: a schema name has no dot outside double quotes (quote it: '"a.b"')`;
  return { text, name: parts[0]! };
}

export function matchesTable(p: QualifiedPattern, schema: string, name: string): boolean {
  return p.schema.test(schema) && p.name.test(name);
}

export function isSelective(s: Selection | undefined): s is Selection {
  return Boolean(s && (s.tables.length || s.schemas.length || s.excludeTables.length));
}

/** A name as SQL spells it: quoted when it is not a plain lower-case identifier. */
export function sqlName(schema: string, name: string): string {
  const q = (x: string) => (/^[a-z_][a-z0-9_$]*$/.test(x) ? x : `"${x.replace(/"/g, '""')}"`);
  return `${q(schema)}.${q(name)}`;
}
