/**
 * Object key naming and parsing (DESIGN.md "Object layout"). Pure: no I/O.
 *
 *   {prefix}{db}/{YYYY}/{MM}/{DD}/{db}_{YYYYMMDD}T{HHMMSS}Z.sql.gz.age
 *   {prefix}{db}/{YYYY}/{MM}/{DD}/{db}_{YYYYMMDD}T{HHMMSS}Z.sql.gz.age.json   (manifest)
 */

export type Tier = 'daily' | 'weekly' | 'monthly' | 'yearly';
export const TIERS: readonly Tier[] = ['daily', 'weekly', 'monthly', 'yearly'];

export type Suffix = '.sql' | '.sql.gz' | '.sql.age' | '.sql.gz.age';
export const SUFFIXES: readonly Suffix[] = ['.sql.gz.age', '.sql.age', '.sql.gz', '.sql'];
export const MANIFEST_SUFFIX = '.json';
export const GLOBALS_DB = '_globals';

export interface Chain {
  gzip: boolean;
  age: boolean;
}

export function suffixFor(chain: Chain): Suffix {
  return `.sql${chain.gzip ? '.gz' : ''}${chain.age ? '.age' : ''}` as Suffix;
}

/** The decode chain a key's suffix names, or null when it names none. */
export function chainOf(key: string): Chain | null {
  for (const s of SUFFIXES) {
    if (key.endsWith(s)) return { gzip: s.includes('.gz'), age: s.endsWith('.age') };
  }
  return null;
}

/**
 * Database names may hold any character but NUL. In keys, `/`, `\`, `%` and control
 * characters are percent-encoded so that a name is always one path segment; spaces, quotes
 * and non-ASCII letters stay as they are (S3 keys are UTF-8, and the console shows them).
 */
export function encodeDbName(db: string): string {
  let out = '';
  for (const ch of db) {
    const cp = ch.codePointAt(0)!;
    if (ch === '/' || ch === '\\' || ch === '%' || cp < 0x20 || cp === 0x7f) {
      out += Buffer.from(ch, 'utf8')
        .toString('hex')
        .toUpperCase()
        .replace(/(..)/g, '%$1');
    } else {
      out += ch;
    }
  }
  if (out === '.' || out === '..') out = out.replace(/\./g, '%2E');
  return out;
}

export function decodeDbName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * Why `key` cannot name an object under a target, or null when it can. Keys are relative,
 * '/'-separated, with no empty, "." or ".." segment and no backslash (some S3-compatible
 * servers normalise such keys into another prefix; a folder would resolve them outside).
 */
export function keyProblem(key: string): string | null {
  if (key === '') return 'the key is empty';
  if (key.startsWith('/')) return 'an absolute path is not a key (to read a local file, give it as ./FILE, /PATH/FILE.sql... or file:PATH)';
  if (key.includes('\\')) return 'a key may not contain a backslash';
  if (key.includes('\0')) return 'a key may not contain a NUL character';
  const segs = key.split('/');
  if (segs.some((s) => s === '..' || s === '.')) return 'a key may not have "." or ".." segments';
  if (segs.some((s) => s === '')) return 'a key may not have empty segments ("//" or a trailing "/")';
  return null;
}

/** keyProblem for a listing prefix: empty, or a key that may end in "/". */
export function prefixProblem(prefix: string): string | null {
  if (prefix === '') return null;
  return keyProblem(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

/** `20251108T192837Z` for a Date (UTC, whole seconds). */
export function stamp(d: Date): string {
  return (
    `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`
  );
}

/** ISO 8601 without milliseconds: `2025-11-08T19:28:37Z`. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Normalise a target prefix: empty, or ending in exactly one `/`, never starting with one. */
export function normalisePrefix(prefix: string): string {
  const p = prefix.replace(/^\/+/, '');
  if (p === '') return '';
  return p.endsWith('/') ? p : `${p}/`;
}

/** The folder (key prefix) holding a database's backups of one UTC day. */
export function dayPrefix(prefix: string, db: string, d: Date): string {
  return `${normalisePrefix(prefix)}${encodeDbName(db)}/${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/`;
}

export function dbPrefix(prefix: string, db: string): string {
  return `${normalisePrefix(prefix)}${encodeDbName(db)}/`;
}

/**
 * The dump's key. `seq` > 1 distinguishes a second backup started in the same second
 * (`..._20251108T192837Z-2.sql.gz.age`); the first has none.
 */
export function backupKey(prefix: string, db: string, start: Date, chain: Chain, seq = 1): string {
  const name = encodeDbName(db);
  const extra = seq > 1 ? `-${seq}` : '';
  return `${dayPrefix(prefix, db, start)}${name}_${stamp(start)}${extra}${suffixFor(chain)}`;
}

export function manifestKey(dumpKey: string): string {
  return dumpKey + MANIFEST_SUFFIX;
}

/**
 * On S3, a backup claims its dump's key first with a small conditional PutObject of
 * `{dump key}.claim` (tagged with the dump's tier, so it expires with it): a server that
 * ignores If-None-Match on CompleteMultipartUpload (Ceph RGW) still honours it on PutObject.
 */
export const CLAIM_SUFFIX = '.claim';

export function claimKey(dumpKey: string): string {
  return dumpKey + CLAIM_SUFFIX;
}

/** The verify record written beside a manifest by `verify`: `{dump key}.verified.json`. */
export const VERIFIED_SUFFIX = '.verified.json';

export function verifiedKey(dumpKey: string): string {
  return dumpKey + VERIFIED_SUFFIX;
}

/**
 * A file that belongs to a dump (its manifest or its verify record): the dump's key and which,
 * or null for anything else.
 */
export function sidecarOf(key: string): { dump: string; what: 'manifest' | 'verified' } | null {
  if (key.endsWith(VERIFIED_SUFFIX)) {
    const dump = key.slice(0, -VERIFIED_SUFFIX.length);
    return parseKey(dump) ? { dump, what: 'verified' } : null;
  }
  if (isManifestKey(key)) {
    const dump = key.slice(0, -MANIFEST_SUFFIX.length);
    return parseKey(dump) ? { dump, what: 'manifest' } : null;
  }
  return null;
}

export function isManifestKey(key: string): boolean {
  return key.endsWith('.sql.gz.age.json') || key.endsWith('.sql.gz.json') || key.endsWith('.sql.age.json') || key.endsWith('.sql.json');
}

export interface ParsedKey {
  key: string;
  prefix: string;
  database: string;
  time: Date;
  seq: number;
  chain: Chain;
}

const KEY_RE =
  /^(.*?)([^/]+)\/(\d{4})\/(\d{2})\/(\d{2})\/([^/]+)_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-(\d+))?(\.sql(?:\.gz)?(?:\.age)?)$/;

/** Parse a dump key laid out as DESIGN.md says; null for anything else. */
export function parseKey(key: string): ParsedKey | null {
  const m = KEY_RE.exec(key);
  if (!m) return null;
  const [, prefix, dbSeg, yy, mm, dd, nameSeg, y2, m2, d2, hh, mi, ss, seq, suffix] = m;
  if (dbSeg !== nameSeg || yy !== y2 || mm !== m2 || dd !== d2) return null;
  const time = new Date(Date.UTC(+y2!, +m2! - 1, +d2!, +hh!, +mi!, +ss!));
  if (Number.isNaN(time.getTime())) return null;
  return {
    key,
    prefix: prefix!,
    database: decodeDbName(dbSeg!),
    time,
    seq: seq ? Number(seq) : 1,
    chain: chainOf(suffix!)!,
  };
}

/** Monday 00:00 UTC of the ISO week holding `d`. */
export function isoWeekStart(d: Date): Date {
  const day = d.getUTCDay() || 7; // Monday=1 .. Sunday=7
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - (day - 1)));
}

/** A stored full backup's start time and tier tag. */
export interface TierMark {
  time: Date;
  tier: Tier;
}

/**
 * The periods a backup started at `now` may represent, widest first: the tier it gets, which
 * stored backups fall in that period, and which tiers already cover it (a yearly backup also
 * represents its month and week; a daily one represents nothing).
 */
export function tierPeriods(now: Date): Array<{ tier: Tier; contains: (d: Date) => boolean; coveredBy: readonly Tier[] }> {
  const y = now.getUTCFullYear();
  const mo = now.getUTCMonth();
  const week = isoWeekStart(now).getTime();
  return [
    { tier: 'yearly', contains: (t) => t.getUTCFullYear() === y, coveredBy: ['yearly'] },
    { tier: 'monthly', contains: (t) => t.getUTCFullYear() === y && t.getUTCMonth() === mo, coveredBy: ['yearly', 'monthly'] },
    { tier: 'weekly', contains: (t) => isoWeekStart(t).getTime() === week, coveredBy: ['yearly', 'monthly', 'weekly'] },
  ];
}

/**
 * The tier of a full backup started at `now`, given the full backups of the same database
 * already stored: first of a year -> yearly, else first of a month -> monthly, else first of an
 * ISO week -> weekly, else daily. All in UTC. "First" means no stored full backup whose tier
 * covers that period: safety and partial backups never count (leave them out), and a backup
 * forced to `daily` takes no slot. Plain dates are full backups whose tiers were computed the
 * same way, in order.
 */
export function computeTier(now: Date, existing: readonly (Date | TierMark)[]): Tier {
  const sorted = [...existing].sort((a, b) => (a instanceof Date ? a : a.time).getTime() - (b instanceof Date ? b : b.time).getTime());
  const marks: TierMark[] = [];
  for (const e of sorted) marks.push(e instanceof Date ? { time: e, tier: tierFromMarks(e, marks) } : e);
  return tierFromMarks(now, marks);
}

function tierFromMarks(now: Date, marks: readonly TierMark[]): Tier {
  for (const p of tierPeriods(now)) {
    if (!marks.some((m) => p.contains(m.time) && p.coveredBy.includes(m.tier))) return p.tier;
  }
  return 'daily';
}

/** The year prefixes to list to compute a tier for `now` (the ISO week may start last year). */
export function tierListPrefixes(prefix: string, db: string, now: Date): string[] {
  const years = new Set([now.getUTCFullYear(), isoWeekStart(now).getUTCFullYear()]);
  return [...years].map((y) => `${dbPrefix(prefix, db)}${y}/`);
}

/** What the first bytes of a stored object say it is. */
export type Magic = 'age' | 'age-armor' | 'gzip' | 'text';

export function sniff(head: Uint8Array): Magic {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  const s = b.subarray(0, 40).toString('latin1');
  if (s.startsWith('age-encryption.org/')) return 'age';
  if (s.startsWith('-----BEGIN AGE ENCRYPTED FILE-----')) return 'age-armor';
  return 'text';
}
