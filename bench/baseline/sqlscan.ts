/**
 * Scans pg_dump's plain SQL as it streams by, without holding it: counts the rows of every
 * COPY block, notes whether the dump ends with pg_dump's completion marker, and (on restore)
 * can drop or rewrite statement lines outside COPY data. COPY data passes through untouched.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { DumpError } from '../errors.js';

export interface TableCount {
  schema: string;
  name: string;
  rows: number;
}

/** Rewrites one SQL line (without its newline); null drops it. Never sees COPY data. */
export type LineFilter = (line: string) => string | null;

const COPY_RE = /^COPY ((?:"(?:[^"]|"")*"|[^\s."]+))\.((?:"(?:[^"]|"")*"|[^\s."]+))(?: \(.*\))? FROM stdin;$/;
const MARKERS = ['-- PostgreSQL database dump complete', '-- PostgreSQL database cluster dump complete'];

function unquote(id: string): string {
  return id.startsWith('"') ? id.slice(1, -1).replace(/""/g, '"') : id;
}

export class SqlScan extends Transform {
  readonly tables: TableCount[] = [];
  /** The dump's completion marker was seen, followed by nothing but comments, blank lines and \unrestrict. */
  complete = false;
  bytes = 0;
  private inCopy = false;
  private current: TableCount | null = null;
  /** sql mode: the start of a line not yet ended. */
  private carry: Buffer[] = [];
  private carryLen = 0;
  /** copy mode: length and first bytes of the line in progress. */
  private lineLen = 0;
  private lineHead = '';

  constructor(
    private readonly lineFilter?: LineFilter,
    /** Fail at the end of input unless the completion marker was seen (a backup's guard). */
    private readonly requireComplete = false,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  private sqlLine(line: string): string | null {
    const trimmed = line.trimEnd();
    if (MARKERS.includes(trimmed)) this.complete = true;
    else if (this.complete && trimmed !== '' && !trimmed.startsWith('--') && !trimmed.startsWith('\\unrestrict')) this.complete = false;
    if (line.startsWith('COPY ')) {
      const m = COPY_RE.exec(line);
      if (m) {
        this.current = { schema: unquote(m[1]!), name: unquote(m[2]!), rows: 0 };
        this.tables.push(this.current);
        this.inCopy = true;
        this.lineLen = 0;
        this.lineHead = '';
      }
    }
    return this.lineFilter ? this.lineFilter(line) : line;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    const out: Buffer[] = [];
    let pos = 0; // start of bytes not yet handed to `out`
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.inCopy) {
        const nl = chunk.indexOf(0x0a, i);
        const end = nl < 0 ? n : nl;
        if (this.lineLen < 2) this.lineHead += chunk.subarray(i, Math.min(end, i + 2 - this.lineLen)).toString('latin1');
        this.lineLen += end - i;
        if (nl < 0) {
          i = n;
          break;
        }
        if (this.lineLen === 2 && this.lineHead === '\\.') {
          this.inCopy = false;
          this.current = null;
        } else {
          this.current!.rows++;
        }
        this.lineLen = 0;
        this.lineHead = '';
        i = nl + 1;
        continue;
      }
      // SQL mode: whole lines.
      const nl = chunk.indexOf(0x0a, i);
      if (nl < 0) {
        // Hand over what precedes the unfinished line, keep the rest.
        if (i > pos) out.push(chunk.subarray(pos, i));
        this.carry.push(chunk.subarray(i));
        this.carryLen += n - i;
        pos = n;
        i = n;
        break;
      }
      let lineBuf: Buffer;
      let fromCarry = false;
      if (this.carryLen) {
        this.carry.push(chunk.subarray(i, nl));
        lineBuf = Buffer.concat(this.carry);
        this.carry = [];
        this.carryLen = 0;
        fromCarry = true;
      } else {
        lineBuf = chunk.subarray(i, nl);
      }
      const line = lineBuf.toString('utf8');
      const res = this.sqlLine(line);
      if (this.lineFilter && res !== line) {
        if (!fromCarry && i > pos) out.push(chunk.subarray(pos, i));
        if (res !== null) out.push(Buffer.from(res + '\n', 'utf8'));
        pos = nl + 1;
      } else if (fromCarry) {
        out.push(lineBuf, Buffer.from('\n'));
        pos = nl + 1;
      }
      i = nl + 1;
    }
    if (pos < n) out.push(chunk.subarray(pos, n));
    for (const b of out) this.push(b);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.carryLen) {
      const line = Buffer.concat(this.carry).toString('utf8');
      this.carry = [];
      this.carryLen = 0;
      const res = this.sqlLine(line);
      if (res !== null) this.push(Buffer.from(res, 'utf8'));
    }
    if (this.requireComplete && !this.complete) {
      return cb(new DumpError('INCOMPLETE_DUMP', "pg_dump's output ended without its completion marker: the dump is incomplete"));
    }
    cb();
  }
}
