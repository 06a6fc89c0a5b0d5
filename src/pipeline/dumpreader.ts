/**
 * The statement-aware reader of pg_dump's plain format, used by backup (row counts, the
 * completion marker), restore (rewrites, the guard against incomplete input) and verify.
 *
 * It streams: bytes in, the same bytes out, except whole statements that a rewrite drops or
 * replaces. It knows what psql's own lexer knows (psqlscan.l): string literals (standard, `E''`,
 * and `standard_conforming_strings = off`), dollar quoting, quoted identifiers (which may span
 * lines), nested block comments, `--` comments, parentheses and `BEGIN ATOMIC ... END` bodies
 * (whose semicolons do not end the statement), psql meta-commands (`\restrict`, `\connect`),
 * `COPY ... FROM stdin` data up to `\.`, and pg_dump's entry headers
 * (`-- Name: ...; Type: ...; Schema: ...; Owner: ...`). Nothing inside a literal, a body or COPY
 * data is ever looked at as a statement, so nothing there is ever rewritten.
 *
 * Memory is bounded: a statement is held whole (to decide on it) only up to HOLD_LIMIT bytes;
 * longer ones (large function bodies, large-object writes) stream through and cannot be
 * rewritten. COPY data is never held.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { DumpError } from '../support/errors.js';
import { decodeName } from './pgencoding.js';
import type { TableCount } from '../model/manifest.js';

export type { TableCount };

/** One of pg_dump's table-of-contents entries, from its header comment. */
export interface Entry {
  /** As in the header: "TABLE", "TABLE DATA", "INDEX", "BLOB", "BLOBS", "ACL", ... */
  type: string;
  /** The header's name (pg_dump replaces newlines in it with spaces). */
  name: string;
  /** null for "-". */
  schema: string | null;
  owner: string | null;
  /** A "Data for Name:" header. */
  data: boolean;
}

/**
 * preamble: pg_dump's SET statements before the first entry; clean: the drop statements that
 * `pg_dump --clean` writes before the first entry; body: everything after the first entry header.
 */
export type Section = 'preamble' | 'clean' | 'body';

export interface Statement {
  /** The statement's bytes as latin1 text (byte-exact both ways), up to and including its `;`. */
  text: string;
  /** A psql meta-command line (`\restrict ...`), without its newline. */
  meta: boolean;
  entry: Entry | null;
  section: Section;
  /** Longer than HOLD_LIMIT: already passed on; only its first bytes are in `text`. */
  streamed: boolean;
}

/** undefined or the same text keeps a statement; null drops it; a string replaces it (latin1). */
export type Rewrite = (s: Statement) => string | null | undefined;

export interface DumpReaderOptions {
  rewrite?: Rewrite | undefined;
  /** Fail at the end of input unless pg_dump's completion marker was seen. */
  requireComplete?: boolean | undefined;
  /** Drop the leading drop statements of a dump made with `pg_dump --clean` (counted in `skippedClean`). */
  skipClean?: boolean | undefined;
  /** Drop the BEGIN/COMMIT pg_dump writes around large-object data (they would end the restore's one transaction). */
  dropBlobTransaction?: boolean | undefined;
  onEntry?: ((e: Entry) => void) | undefined;
  /**
   * Object mode, for the parallel restore: instead of bytes, hand on `ReaderItem`s: whole
   * statements (with their entry), COPY data in whole lines, and the end of each COPY block.
   * Comments and blank lines between statements are left out.
   */
  objects?: boolean | undefined;
}

export type ReaderItem =
  | { t: 'stmt'; text: string; meta: boolean; entry: Entry | null; section: Section; copy: TableCount | null }
  | { t: 'data'; buf: Buffer }
  | { t: 'copyEnd' };

export const HOLD_LIMIT = 1 << 20;
const HEAD_KEEP = 4096;

const MARKERS = ['-- PostgreSQL database dump complete', '-- PostgreSQL database cluster dump complete'];
const HEADER_RE = /^-- (Data for )?Name: (.*); Type: ([A-Z][A-Z ]*); Schema: (.*?); Owner: (.*?)(?:; Tablespace: .*)?$/;

/**
 * What `pg_dump --clean` writes before the first entry: DROP ... IF EXISTS, ALTER ... DROP
 * CONSTRAINT / DEFAULT, lo_unlink, and CREATE OR REPLACE VIEW placeholders for views whose
 * query was split off into a rule.
 */
const CLEAN_RE = /^(DROP\s|ALTER\s[\s\S]*\sDROP\s|SELECT\s+pg_catalog\.lo_unlink\s*\(|CREATE\s+OR\s+REPLACE\s+VIEW\s)/i;

const enum S {
  Normal,
  SQuote,
  EQuote,
  DQuote,
  Dollar,
  LineComment,
  BlockComment,
  Meta,
  AfterCopy,
  Copy,
}

const isIdentStart = (b: number) => (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || b === 0x5f || b >= 0x80;
const isIdentCont = (b: number) => isIdentStart(b) || (b >= 0x30 && b <= 0x39) || b === 0x24;
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x09 || b === 0x0d || b === 0x0c || b === 0x0b;

/** `schema.name` (each part quoted or not) at the start of `s`, and the rest. */
function parseQualified(s: string): { parts: string[]; rest: string } | null {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    if (s[i] === '"') {
      let j = i + 1;
      let v = '';
      for (;;) {
        const k = s.indexOf('"', j);
        if (k < 0) return null;
        v += s.slice(j, k);
        if (s[k + 1] === '"') {
          v += '"';
          j = k + 2;
        } else {
          i = k + 1;
          break;
        }
      }
      parts.push(v);
    } else {
      const m = /^[^\s."(;]+/.exec(s.slice(i));
      if (!m) return null;
      parts.push(m[0].toLowerCase() === m[0] ? m[0] : m[0].toLowerCase());
      i += m[0].length;
    }
    if (s[i] === '.') i++;
    else break;
  }
  return { parts, rest: s.slice(i) };
}

/** The table of a `COPY name [(cols)] FROM stdin;` statement, or null when it is not one. */
export function copyTarget(text: string): { schema: string | null; name: string } | null {
  const m = /^COPY\s+/i.exec(text);
  if (!m) return null;
  const q = parseQualified(text.slice(m[0].length));
  if (!q || q.parts.length > 2) return null;
  let rest = q.rest.trimStart();
  if (rest.startsWith('(')) {
    // Column list: skip it, minding quoted column names.
    let depth = 0;
    let i = 0;
    let inQ = false;
    for (; i < rest.length; i++) {
      const c = rest[i];
      if (inQ) {
        if (c === '"') inQ = false;
      } else if (c === '"') inQ = true;
      else if (c === '(') depth++;
      else if (c === ')' && --depth === 0) break;
    }
    rest = rest.slice(i + 1).trimStart();
  }
  if (!/^FROM\s+stdin\s*;\s*$/i.test(rest)) return null;
  return q.parts.length === 2 ? { schema: q.parts[0]!, name: q.parts[1]! } : { schema: null, name: q.parts[0]! };
}

export class DumpReader extends Transform {
  readonly tables: TableCount[] = [];
  /** pg_dump's completion marker was seen, followed by nothing but comments, blank lines and \unrestrict. */
  complete = false;
  /** SQL bytes read. */
  bytes = 0;
  /** Statements of a leading `--clean` section that were dropped. */
  skippedClean = 0;
  /** Entry headers seen. */
  entries = 0;
  /** From the dump's `SET client_encoding`. */
  encoding = 'UTF8';
  readonly dropped: Map<string, number> = new Map();

  private state: S = S.Normal;
  private standardStrings = true;
  private carry: Buffer | null = null;
  // The statement in progress.
  private inStmt = false;
  private held: Buffer[] = [];
  private heldLen = 0;
  private streamedStmt = false;
  private head = '';
  private parenDepth = 0;
  private beginDepth = 0;
  private identCount = 0;
  private idents = ['', '', '', ''];
  private word = '';
  private inWord = false;
  private dollarTag = '';
  private commentDepth = 0;
  /** Inter-statement comment line being read (for headers and the completion marker). */
  private commentLine = '';
  private commentIsTop = false;
  private metaLine = '';
  private entry: Entry | null = null;
  private sawHeader = false;
  // COPY data.
  private current: TableCount | null = null;
  private lineLen = 0;
  /** The first two bytes of the COPY line in progress (-1: not seen yet), to find its `\.` end. */
  private head0 = -1;
  private head1 = -1;
  /** The COPY statement was dropped: drop its data too. */
  private dropCopy = false;

  constructor(private readonly o: DumpReaderOptions = {}) {
    super(o.objects ? { readableObjectMode: true, readableHighWaterMark: 64, writableHighWaterMark: 1 << 20 } : { highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    let buf = chunk;
    try {
      if (this.carry) {
        const carry = this.carry;
        this.carry = null;
        // COPY data carries a line cut at the end of a chunk: joined with just the rest of that
        // line, not copied in front of the whole next chunk.
        const nl = this.state === S.Copy ? chunk.indexOf(0x0a) : -1;
        if (nl >= 0 && nl + 1 < chunk.length) {
          this.scan(Buffer.concat([carry, chunk.subarray(0, nl + 1)]), false);
          buf = chunk.subarray(nl + 1);
          if (this.carry) {
            buf = Buffer.concat([this.carry, buf]);
            this.carry = null;
          }
        } else buf = Buffer.concat([carry, chunk]);
      }
      this.scan(buf, false);
    } catch (e) {
      return cb(e as Error);
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.carry) {
        const buf = this.carry;
        this.carry = null;
        this.scan(buf, true);
      }
      if (this.state === S.LineComment) this.endComment();
      if (this.state === S.Meta) {
        const out: Buffer[] = [];
        this.endMeta(Buffer.alloc(0), 0, 0, out);
        for (const b of out) this.push(b);
      }
      if (this.inStmt) {
        // An unterminated statement at the end of input: psql would run it; pass it on as is.
        if (this.objects) this.items.push({ t: 'stmt', text: Buffer.concat(this.held).toString('latin1'), meta: false, entry: this.entry, section: 'body', copy: null });
        else for (const b of this.held) this.push(b);
        this.complete = false;
      }
      for (const it of this.items) this.push(it);
      this.items = [];
    } catch (e) {
      return cb(e as Error);
    }
    if (this.o.requireComplete && !this.complete) {
      return cb(new DumpError('INCOMPLETE_DUMP', "the dump ended without pg_dump's completion marker: it is incomplete"));
    }
    cb();
  }

  private streamedDecision: string | null | undefined;
  private droppingStmt = false;

  /** What the rewrite makes of a statement (`text` its whole text, or its head when streamed). */
  private decide(text: string, streamed: boolean): string | null | undefined {
    const section: Section = this.sawHeader ? 'body' : CLEAN_RE.test(text) ? 'clean' : 'preamble';
    if (section === 'clean' && this.o.skipClean) {
      this.skippedClean++;
      return null;
    }
    if (this.o.dropBlobTransaction && /^(BEGIN|COMMIT)\s*;$/i.test(text)) {
      this.note(text.replace(/\s*;$/, '').toUpperCase());
      return null;
    }
    const keep = this.o.rewrite?.({ text, meta: false, entry: this.entry, section, streamed });
    if (keep === null) this.note(text.slice(0, 40).split(/\s+/).slice(0, 2).join(' '));
    if (streamed && keep !== undefined && keep !== null && keep !== text) {
      throw new DumpError('REWRITE_TOO_LONG', `a statement of over ${HOLD_LIMIT} bytes needs a rewrite the reader cannot make (${text.slice(0, 60)}...)`);
    }
    return keep;
  }

  private startStatement(): void {
    this.inStmt = true;
    this.droppingStmt = false;
    this.streamedDecision = undefined;
    this.held = [];
    this.heldLen = 0;
    this.streamedStmt = false;
    this.head = '';
    this.parenDepth = 0;
    this.beginDepth = 0;
    this.identCount = 0;
    this.idents = ['', '', '', ''];
    if (this.complete) this.complete = false;
  }

  /** Bytes of the statement in progress, from `from` to `to` of `buf`, into the hold (or through, when too long). */
  private hold(buf: Buffer, from: number, to: number, out: Buffer[]): void {
    if (to <= from) return;
    const piece = buf.subarray(from, to);
    if (this.head.length < HEAD_KEEP) this.head += piece.subarray(0, HEAD_KEEP - this.head.length).toString('latin1');
    if (this.streamedStmt) {
      if (!this.droppingStmt) out.push(piece);
      return;
    }
    this.held.push(piece);
    this.heldLen += piece.length;
    if (this.heldLen > HOLD_LIMIT && !this.objects) {
      // Too long to hold: decided now, from its first HEAD_KEEP bytes. Kept, it streams
      // through; dropped (a selective restore's other objects), its bytes are let go as they come.
      this.streamedDecision = this.decide(this.head, true);
      if (this.streamedDecision === null) this.droppingStmt = true;
      else out.push(...this.held);
      this.held = [];
      this.heldLen = 0;
      this.streamedStmt = true;
    }
  }

  private finishWord(): void {
    this.inWord = false;
    const w = this.word;
    if (this.identCount < 4 && (w === 'create' || w === 'function' || w === 'procedure' || w === 'or' || w === 'replace')) this.idents[this.identCount] = w[0]!;
    this.identCount++;
    const id = this.idents;
    if (
      id[0] === 'c' &&
      (id[1] === 'f' || id[1] === 'p' || (id[1] === 'o' && id[2] === 'r' && (id[3] === 'f' || id[3] === 'p'))) &&
      this.parenDepth === 0
    ) {
      if (w === 'begin') this.beginDepth++;
      else if (w === 'case') {
        if (this.beginDepth >= 1) this.beginDepth++;
      } else if (w === 'end') {
        if (this.beginDepth > 0) this.beginDepth--;
      }
    }
  }

  /**
   * Scan `buf` from its start. Bytes are handed on in `out` as slices; a statement's bytes are
   * held until its end decides its fate. When a decision needs bytes beyond the buffer, the rest
   * is carried into the next chunk (unless `final`).
   */
  private scan(buf: Buffer, final: boolean): void {
    const out: Buffer[] = [];
    const objects = this.objects;
    const n = buf.length;
    let i = 0;
    let emitFrom = 0; // inter-statement bytes not yet handed on start here
    let stmtFrom = this.inStmt ? 0 : -1; // where this buffer's part of the current statement starts
    const stopAt = (at: number) => {
      // Carry buf[at..] into the next chunk.
      if (stmtFrom >= 0) this.hold(buf, stmtFrom, at, out);
      else if (at > emitFrom && !objects) out.push(buf.subarray(emitFrom, at));
      this.carry = Buffer.from(buf.subarray(at));
      i = n;
      emitFrom = n;
      stmtFrom = -1;
    };
    scanning: while (i < n) {
      switch (this.state) {
        case S.Copy: {
          const nl = buf.indexOf(0x0a, i);
          const end = nl < 0 ? n : nl;
          // Bytes, not a string a line: millions of lines go through here.
          if (this.lineLen === 0) {
            if (end > i) this.head0 = buf[i]!;
            if (end > i + 1) this.head1 = buf[i + 1]!;
          } else if (this.lineLen === 1 && end > i) this.head1 = buf[i]!;
          this.lineLen += end - i;
          if (nl < 0) {
            if (objects && !this.dropCopy) {
              // Whole lines only: a short unfinished line is carried into the next chunk.
              const lineStart = n - this.lineLen;
              if (!final && lineStart >= emitFrom && this.lineLen <= 65536) {
                if (lineStart > emitFrom) this.items.push({ t: 'data', buf: buf.subarray(emitFrom, lineStart) });
                this.carry = Buffer.from(buf.subarray(lineStart));
                this.lineLen = 0;
                this.head0 = this.head1 = -1;
                emitFrom = n;
                break scanning;
              }
              if (n > emitFrom) this.items.push({ t: 'data', buf: buf.subarray(emitFrom, n) });
              emitFrom = n;
            }
            i = n;
            break;
          }
          if (this.lineLen === 2 && this.head0 === 0x5c && this.head1 === 0x2e) {
            this.state = S.Normal;
            this.current = null;
            if (objects && !this.dropCopy) {
              if (nl - 2 > emitFrom) this.items.push({ t: 'data', buf: buf.subarray(emitFrom, nl - 2) });
              this.items.push({ t: 'copyEnd' });
              emitFrom = nl + 1;
            }
            if (this.dropCopy) {
              // The data of a dropped COPY goes with it, up to and including its `\.` line.
              this.dropCopy = false;
              emitFrom = nl + 1;
            }
          } else if (this.current) {
            this.current.rows++;
          }
          this.lineLen = 0;
          this.head0 = this.head1 = -1;
          i = nl + 1;
          break;
        }
        case S.AfterCopy: {
          const nl = buf.indexOf(0x0a, i);
          if (nl < 0) {
            i = n;
            break;
          }
          i = nl + 1;
          this.state = S.Copy;
          this.lineLen = 0;
          this.head0 = this.head1 = -1;
          if (objects) emitFrom = i;
          break;
        }
        case S.LineComment: {
          const nl = buf.indexOf(0x0a, i);
          const end = nl < 0 ? n : nl;
          if (this.commentIsTop && this.commentLine.length < 4096) this.commentLine += buf.subarray(i, Math.min(end, i + 4096)).toString('latin1');
          if (nl < 0) {
            i = n;
            break;
          }
          i = nl + 1;
          this.state = S.Normal;
          this.endComment();
          break;
        }
        case S.Meta: {
          const nl = buf.indexOf(0x0a, i);
          const end = nl < 0 ? n : nl;
          this.metaLine += buf.subarray(i, end).toString('latin1');
          if (nl < 0) {
            // Meta-command lines are held whole (they are short).
            this.held.push(buf.subarray(emitFrom, n));
            emitFrom = n;
            i = n;
            break;
          }
          i = nl + 1;
          this.endMeta(buf, emitFrom, i, out);
          emitFrom = i;
          this.state = S.Normal;
          break;
        }
        case S.SQuote:
        case S.DQuote: {
          const q = this.state === S.SQuote ? 0x27 : 0x22;
          const k = buf.indexOf(q, i);
          if (k < 0) {
            i = n;
            break;
          }
          if (k + 1 >= n && !final) {
            stopAt(k);
            break scanning;
          }
          if (buf[k + 1] === q) {
            i = k + 2;
            break;
          }
          i = k + 1;
          this.state = S.Normal;
          break;
        }
        case S.EQuote: {
          // E'' strings (and all strings under standard_conforming_strings = off): backslash escapes.
          for (; i < n; i++) {
            const b = buf[i]!;
            if (b === 0x5c) {
              if (i + 1 >= n && !final) {
                stopAt(i);
                break scanning;
              }
              i++;
            } else if (b === 0x27) {
              if (i + 1 >= n && !final) {
                stopAt(i);
                break scanning;
              }
              if (buf[i + 1] === 0x27) i++;
              else {
                i++;
                this.state = S.Normal;
                continue scanning;
              }
            }
          }
          break;
        }
        case S.Dollar: {
          const delim = this.dollarTag;
          const k = buf.indexOf(delim, i, 'latin1');
          if (k >= 0) {
            i = k + delim.length;
            this.state = S.Normal;
            break;
          }
          // The closing delimiter may straddle the chunk boundary.
          const keep = Math.max(i, n - delim.length + 1);
          if (!final && keep < n && buf.indexOf(0x24, keep) >= 0) {
            stopAt(buf.indexOf(0x24, keep));
            break scanning;
          }
          i = n;
          break;
        }
        case S.BlockComment: {
          for (; i < n; i++) {
            const b = buf[i]!;
            if (b !== 0x2a && b !== 0x2f) continue;
            if (i + 1 >= n && !final) {
              stopAt(i);
              break scanning;
            }
            if (b === 0x2a && buf[i + 1] === 0x2f) {
              i += 2;
              if (--this.commentDepth === 0) {
                this.state = S.Normal;
                continue scanning;
              }
              i--;
            } else if (b === 0x2f && buf[i + 1] === 0x2a) {
              this.commentDepth++;
              i++;
            }
          }
          break;
        }
        case S.Normal: {
          const b = buf[i]!;
          if (this.inWord && !isIdentCont(b)) this.finishWord();
          if (!this.inStmt) {
            if (isSpace(b)) {
              i++;
              break;
            }
            if (b === 0x2d || b === 0x2f) {
              if (i + 1 >= n && !final) {
                stopAt(i);
                break scanning;
              }
              if (b === 0x2d && buf[i + 1] === 0x2d) {
                this.state = S.LineComment;
                this.commentIsTop = true;
                this.commentLine = '';
                break;
              }
              if (b === 0x2f && buf[i + 1] === 0x2a) {
                this.state = S.BlockComment;
                this.commentDepth = 1;
                i += 2;
                break;
              }
            }
            if (b === 0x5c) {
              // A psql meta-command: the rest of the line.
              if (i > emitFrom && !objects) out.push(buf.subarray(emitFrom, i));
              emitFrom = i;
              this.held = [];
              this.metaLine = '';
              this.state = S.Meta;
              break;
            }
            // A statement starts here.
            if (i > emitFrom && !objects) out.push(buf.subarray(emitFrom, i));
            emitFrom = i;
            stmtFrom = i;
            this.startStatement();
          }
          if (b === 0x3b) {
            if (this.parenDepth === 0 && this.beginDepth === 0) {
              i++;
              this.endStatement(buf, stmtFrom, i, out);
              stmtFrom = -1;
              emitFrom = i;
              break;
            }
            i++;
            break;
          }
          if (isIdentStart(b) && !this.inWord) {
            this.inWord = true;
            this.word = '';
          }
          if (this.inWord) {
            if (this.word.length < 12) this.word += String.fromCharCode(b >= 0x41 && b <= 0x5a ? b + 32 : b);
            i++;
            break;
          }
          switch (b) {
            case 0x27: {
              const e = this.lastWordWasE;
              this.state = e || !this.standardStrings ? S.EQuote : S.SQuote;
              i++;
              break;
            }
            case 0x22:
              this.state = S.DQuote;
              i++;
              break;
            case 0x28:
              this.parenDepth++;
              i++;
              break;
            case 0x29:
              if (this.parenDepth > 0) this.parenDepth--;
              i++;
              break;
            case 0x2d:
            case 0x2f:
              if (i + 1 >= n && !final) {
                stopAt(i);
                break scanning;
              }
              if (b === 0x2d && buf[i + 1] === 0x2d) {
                this.state = S.LineComment;
                this.commentIsTop = false;
                i += 2;
              } else if (b === 0x2f && buf[i + 1] === 0x2a) {
                this.state = S.BlockComment;
                this.commentDepth = 1;
                i += 2;
              } else i++;
              break;
            case 0x24: {
              // $tag$ or $$ (a `$` right after an identifier is part of it; `$1` is a parameter).
              let j = i + 1;
              while (j < n && buf[j] !== 0x24 && (j === i + 1 ? isIdentStart(buf[j]!) : isIdentCont(buf[j]!)) && j - i < 80) j++;
              if (j >= n && !final) {
                stopAt(i);
                break scanning;
              }
              if (j < n && buf[j] === 0x24) {
                this.dollarTag = buf.toString('latin1', i, j + 1);
                this.state = S.Dollar;
                i = j + 1;
              } else i = j > i + 1 ? j : i + 1;
              break;
            }
            default:
              i++;
          }
          this.lastWordWasE = false;
          break;
        }
      }
      // Track "the token just before a quote was the word E" for E'' strings.
      if (this.state === S.Normal && this.inWord) this.lastWordWasE = this.word === 'e';
    }
    if (this.carry === null && this.state !== S.Meta) {
      if (stmtFrom >= 0) this.hold(buf, stmtFrom, n, out);
      else if (this.dropCopy && this.state === S.Copy) emitFrom = n;
      else if (objects) {
        if (this.state === S.Copy && n > emitFrom) this.items.push({ t: 'data', buf: buf.subarray(emitFrom, n) });
      } else if (n > emitFrom) out.push(buf.subarray(emitFrom, n));
    }
    if (objects) {
      for (const it of this.items) this.push(it);
      this.items = [];
    } else this.pushAll(out, buf);
  }

  private items: ReaderItem[] = [];
  private get objects(): boolean {
    return Boolean(this.o.objects);
  }

  private lastWordWasE = false;

  private pushAll(out: Buffer[], buf: Buffer): void {
    if (out.length === 0) return;
    if (out.length === 1) {
      this.push(out[0]);
      return;
    }
    // Contiguous slices of one buffer go out as one.
    let contiguous = true;
    for (let k = 0; k < out.length && contiguous; k++) {
      const s = out[k]!;
      if (s.buffer !== buf.buffer) contiguous = false;
      else if (k > 0) {
        const p = out[k - 1]!;
        if (p.byteOffset + p.length !== s.byteOffset) contiguous = false;
      }
    }
    if (contiguous) {
      const first = out[0]!;
      const last = out[out.length - 1]!;
      this.push(Buffer.from(first.buffer, first.byteOffset, last.byteOffset + last.length - first.byteOffset));
    } else {
      this.push(Buffer.concat(out));
    }
  }

  private endComment(): void {
    if (!this.commentIsTop) return;
    const line = ('--' + this.commentLine.replace(/^--/, '')).replace(/\r$/, '').trimEnd();
    this.commentLine = '';
    if (MARKERS.includes(line)) {
      this.complete = true;
      return;
    }
    const m = HEADER_RE.exec(line);
    if (m) {
      this.sawHeader = true;
      this.entries++;
      this.entry = { type: m[3]!.trim(), name: m[2]!, schema: m[4] === '-' ? null : m[4]!, owner: m[5] === '-' || m[5] === '' ? null : m[5]!, data: Boolean(m[1]) };
      this.o.onEntry?.(this.entry);
    }
  }

  private endMeta(buf: Buffer, from: number, to: number, out: Buffer[]): void {
    const pieces = [...this.held, buf.subarray(from, to)];
    this.held = [];
    const line = this.metaLine.replace(/\r$/, '');
    this.metaLine = '';
    if (this.complete && !line.startsWith('\\unrestrict')) this.complete = false;
    const st: Statement = { text: line, meta: true, entry: this.entry, section: this.sawHeader ? 'body' : 'preamble', streamed: false };
    const r = this.o.rewrite?.(st);
    if (r === null) this.note(line.split(/\s/)[0]!);
    else if (this.objects) this.items.push({ t: 'stmt', text: r ?? line, meta: true, entry: this.entry, section: st.section, copy: null });
    else if (r === undefined || r === line) out.push(...pieces);
    else out.push(Buffer.from(r + '\n', 'latin1'));
  }

  private note(what: string): void {
    this.dropped.set(what, (this.dropped.get(what) ?? 0) + 1);
  }

  private endStatement(buf: Buffer, from: number, to: number, out: Buffer[]): void {
    this.inStmt = false;
    if (this.inWord) this.finishWord();
    const streamed = this.streamedStmt;
    const pieces = streamed ? [] : [...this.held, buf.subarray(from, to)];
    if (streamed) {
      if (!this.droppingStmt) out.push(buf.subarray(from, to));
    } else if (this.head.length < HEAD_KEEP) {
      this.head += buf.subarray(from, Math.min(to, from + HEAD_KEEP - this.head.length)).toString('latin1');
    }
    this.held = [];
    this.heldLen = 0;
    const text = streamed ? this.head : pieces.length === 1 ? pieces[0]!.toString('latin1') : Buffer.concat(pieces).toString('latin1');

    // Settings that change how the rest is read.
    if (/^SET\s/i.test(text)) {
      const enc = /^SET\s+client_encoding\s*=\s*'([^']*)'\s*;$/i.exec(text);
      if (enc) this.encoding = enc[1]!;
      const scs = /^SET\s+standard_conforming_strings\s*=\s*'?(on|off)'?\s*;$/i.exec(text);
      if (scs) this.standardStrings = scs[1]!.toLowerCase() === 'on';
    }
    const section: Section = this.sawHeader ? 'body' : CLEAN_RE.test(text) ? 'clean' : 'preamble';
    // A streamed statement was decided when it outgrew the hold.
    const keep = streamed ? this.streamedDecision : this.decide(text, false);
    this.droppingStmt = false;
    if (this.objects) {
      if (keep !== null) this.items.push({ t: 'stmt', text: keep ?? text, meta: false, entry: this.entry, section, copy: null });
    } else if (!streamed) {
      if (keep === undefined || keep === text) out.push(...pieces);
      else if (keep !== null) out.push(Buffer.from(keep, 'latin1'));
    }
    // COPY ... FROM stdin: data follows from the next line.
    if (/^COPY\s/i.test(text)) {
      const t = copyTarget(text);
      if (t && keep === null) {
        this.dropCopy = true;
        this.current = null;
        this.state = S.AfterCopy;
      } else if (t) {
        const enc = this.encoding;
        const nm = (s: string) => decodeName(Buffer.from(s, 'latin1'), enc);
        this.current = { schema: t.schema === null ? '' : nm(t.schema), name: nm(t.name), rows: 0 };
        this.tables.push(this.current);
        this.state = S.AfterCopy;
        if (this.objects) {
          const last = this.items[this.items.length - 1];
          if (last && last.t === 'stmt') last.copy = this.current;
        }
      }
    }
  }
}
