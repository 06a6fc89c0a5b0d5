// The line scanner that the statement-aware dump reader replaced (pgbackup 0.1), kept as
// the bench's baseline for the reader's throughput. Types stripped; logic unchanged.
/**
 * Scans pg_dump's plain SQL as it streams by, without holding it: counts the rows of every
 * COPY block, notes whether the dump ends with pg_dump's completion marker, and (on restore)
 * can drop or rewrite statement lines outside COPY data. COPY data passes through untouched.
 */
import { Transform } from 'node:stream';

const COPY_RE = /^COPY ((?:"(?:[^"]|"")*"|[^\s."]+))\.((?:"(?:[^"]|"")*"|[^\s."]+))(?: \(.*\))? FROM stdin;$/;
const MARKERS = ['-- PostgreSQL database dump complete', '-- PostgreSQL database cluster dump complete'];

function unquote(id) {
  return id.startsWith('"') ? id.slice(1, -1).replace(/""/g, '"') : id;
}

export class SqlScan extends Transform {
  tables = [];
  /** The dump's completion marker was seen, followed by nothing but comments, blank lines and \unrestrict. */
  complete = false;
  bytes = 0;
  inCopy = false;
  current = null;
  /** sql mode: the start of a line not yet ended. */
  carry = [];
  carryLen = 0;
  /** copy mode: length and first bytes of the line in progress. */
  lineLen = 0;
  lineHead = '';

  constructor(lineFilter, requireComplete = false) {
    super({ highWaterMark: 1 << 20 });
    this.lineFilter = lineFilter;
    this.requireComplete = requireComplete;
  }

  sqlLine(line) {
    const trimmed = line.trimEnd();
    if (MARKERS.includes(trimmed)) this.complete = true;
    else if (this.complete && trimmed !== '' && !trimmed.startsWith('--') && !trimmed.startsWith('\\unrestrict')) this.complete = false;
    if (line.startsWith('COPY ')) {
      const m = COPY_RE.exec(line);
      if (m) {
        this.current = { schema: unquote(m[1]), name: unquote(m[2]), rows: 0 };
        this.tables.push(this.current);
        this.inCopy = true;
        this.lineLen = 0;
        this.lineHead = '';
      }
    }
    return this.lineFilter ? this.lineFilter(line) : line;
  }

  _transform(chunk, _enc, cb) {
    this.bytes += chunk.length;
    const out = [];
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
          this.current.rows++;
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
      let lineBuf;
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

  _flush(cb) {
    if (this.carryLen) {
      const line = Buffer.concat(this.carry).toString('utf8');
      this.carry = [];
      this.carryLen = 0;
      const res = this.sqlLine(line);
      if (res !== null) this.push(Buffer.from(res, 'utf8'));
    }
    if (this.requireComplete && !this.complete) {
      return cb(new Error('incomplete'));
    }
    cb();
  }
}
