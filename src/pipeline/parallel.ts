/**
 * The parallel load: the dump reader's items (object mode) spread over N psql sessions.
 *
 *   pre-data   in order, in session 0; then every session is synchronised
 *   data       COPY blocks spread over the sessions as they stream by: a block goes to a session
 *              whose pipe is not full; a long block is cut at a line boundary into chunks of at
 *              least CHUNK bytes that load concurrently (each chunk its own COPY). Other data
 *              statements (sequence values, large objects) run in order in session 0.
 *              The stream pauses only when every session's pipe is full.
 *   post-data  indexes and constraints run concurrently; index builds may share a table (they
 *              take SHARE locks), a constraint (ALTER TABLE) has its table to itself;
 *              foreign keys wait for every index and constraint before them (their referenced
 *              keys); anything else (triggers, rules, ACLs, comments, refreshes, attachments)
 *              is a barrier: it runs alone, after everything before it, in pg_dump's order.
 *
 * Each statement commits on its own: atomicity comes from the database the restore loads into
 * (one it created, dropped on failure, or a staging database swapped in at the end).
 */
import { Writable } from 'node:stream';
import type { ReaderItem, Entry } from './dumpreader.js';
import type { PsqlSession } from './psqlsession.js';

export const CHUNK = 8 * 1024 * 1024;

/**
 * The reader's statement texts are latin1 strings of the dump's own bytes (in the dump's
 * client_encoding): they go to psql as those bytes, never re-encoded as UTF-8.
 */
const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

type Kind = 'index' | 'fk' | 'barrier';

interface Task {
  stmts: string[];
  settings: string[];
  tables: string[];
  kind: Kind;
  /** A CREATE INDEX: may run beside other index builds on the same table. */
  shared: boolean;
  entry: Entry | null;
  state: 'waiting' | 'running' | 'done';
}

const ident = String.raw`(?:"(?:[^"]|"")*"|[^\s."(;]+)`;
const qualified = String.raw`${ident}(?:\.${ident})?`;
const INDEX_ON = new RegExp(String.raw`^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?${ident}\s+ON\s+(?:ONLY\s+)?(${qualified})`, 'i');
const ALTER_TABLE = new RegExp(String.raw`^ALTER\s+TABLE\s+(?:ONLY\s+)?(${qualified})`, 'i');
const REFERENCES = new RegExp(String.raw`\sREFERENCES\s+(${qualified})`, 'i');

/** The tables a post-data statement works on, or null when it cannot tell (then it is a barrier). */
function tablesOf(kind: Kind, text: string): string[] | null {
  if (kind === 'index') {
    const m = INDEX_ON.exec(text) ?? ALTER_TABLE.exec(text);
    return m ? [m[1]!] : null;
  }
  if (kind === 'fk') {
    const m = ALTER_TABLE.exec(text);
    const r = REFERENCES.exec(text);
    return m && r ? [m[1]!, r[1]!] : null;
  }
  return null;
}

function kindOf(e: Entry | null): Kind {
  if (!e) return 'barrier';
  if (e.type === 'INDEX' || e.type === 'CONSTRAINT') return 'index';
  if (e.type === 'FK CONSTRAINT') return 'fk';
  return 'barrier';
}

/** Entry types that start the post-data section (pg_dump writes sections in order). */
const POST_TYPES = new Set(['INDEX', 'CONSTRAINT', 'FK CONSTRAINT', 'TRIGGER', 'RULE', 'POLICY', 'INDEX ATTACH', 'MATERIALIZED VIEW DATA', 'EVENT TRIGGER', 'STATISTICS', 'PUBLICATION TABLE', 'PUBLICATION TABLES IN SCHEMA', 'SUBSCRIPTION', 'DEFAULT ACL']);

export interface ParallelStats {
  copyChunks: number;
  postTasks: number;
  maxConcurrentPost: number;
}

export class ParallelLoad extends Writable {
  readonly stats: ParallelStats = { copyChunks: 0, postTasks: 0, maxConcurrentPost: 0 };
  private phase: 'pre' | 'data' | 'post' = 'pre';
  private readonly preamble: string[] = [];
  /** Session-level settings pg_dump writes between entries (default_tablespace, table access method). */
  private readonly settings = new Map<string, string>();
  private copy: { stmt: string; session: PsqlSession; bytes: number } | null = null;
  private readonly tasks: Task[] = [];
  private failure: Error | null = null;

  constructor(
    private readonly sessions: PsqlSession[],
    private readonly o: { check?: () => void; postamble?: string[] } = {},
  ) {
    super({ objectMode: true, highWaterMark: 16 });
    for (const s of sessions) s.onFailure((e) => this.fail(e));
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.destroy(e);
  }

  private get main(): PsqlSession {
    return this.sessions[0]!;
  }

  override _write(item: ReaderItem, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.handle(item).then(() => cb(), (e: Error) => cb(this.failure ?? e));
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.finish().then(() => cb(), (e: Error) => cb(this.failure ?? e));
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!err) return cb(null);
    // A failure anywhere: every session is killed (nothing of this load may go on).
    void Promise.all(this.sessions.map((s) => s.kill())).then(() => cb(err));
  }

  private async toAll(text: string, except?: PsqlSession): Promise<void> {
    for (const s of this.sessions) if (s !== except) await s.write(bytes(text));
  }

  private async handle(item: ReaderItem): Promise<void> {
    if (item.t === 'data') {
      const c = this.copy!;
      const wait = c.session.write(item.buf);
      c.bytes += item.buf.length;
      // A long COPY block: once this chunk is big enough and its session's pipe is full, the
      // rest goes on in a session that has room (items end at line boundaries) instead of
      // waiting for this one.
      if (wait && c.bytes >= CHUNK) {
        const other = this.pickSession(c.session);
        if (other !== c.session) {
          c.session.write('\\.\n')?.catch((e: Error) => this.fail(e));
          wait.catch((e: Error) => this.fail(e));
          this.copy = { stmt: c.stmt, session: other, bytes: 0 };
          this.stats.copyChunks++;
          await other.write(bytes(c.stmt + '\n'));
          return;
        }
      }
      await wait;
      return;
    }
    if (item.t === 'copyEnd') {
      await this.copy!.session.write('\\.\n');
      this.copy = null;
      return;
    }
    if (item.meta) return; // \restrict and the like: each session runs under our control, never a user's psqlrc
    const text = item.text;
    if (item.section !== 'body') {
      this.preamble.push(text);
      await this.main.write(bytes(text + '\n'));
      return;
    }
    if (/^SET\s/i.test(text) && !item.entry?.data) {
      const m = /^SET\s+(\w+)/i.exec(text);
      this.settings.set(m![1]!.toLowerCase(), text);
      if (this.phase !== 'post') await this.main.write(bytes(text + '\n'));
      return;
    }
    const entry = item.entry;
    if (entry && POST_TYPES.has(entry.type) && this.phase !== 'post') await this.enterPost();
    if (this.phase === 'pre' && (item.copy || entry?.data)) await this.enterData();
    if (this.phase === 'post') {
      this.addTask(entry, text);
      return;
    }
    if (this.phase === 'data' && item.copy) {
      const s = this.pickSession();
      this.copy = { stmt: text, session: s, bytes: 0 };
      this.stats.copyChunks++;
      await s.write(bytes(text + '\n'));
      return;
    }
    await this.main.write(bytes(text + '\n'));
  }

  /** A session whose pipe has room, preferring the least loaded; `current` when none has. */
  private pickSession(current?: PsqlSession): PsqlSession {
    let best: PsqlSession | undefined;
    for (const s of this.sessions) {
      if (s === current || s.blocked) continue;
      if (!best || s.pendingBytes < best.pendingBytes) best = s;
    }
    return best ?? current ?? this.sessions.reduce((a, b) => (b.pendingBytes < a.pendingBytes ? b : a));
  }

  private async enterData(): Promise<void> {
    // Every table exists (committed) before any session loads into it.
    await this.main.sync();
    const setup = [...this.preamble, ...this.settings.values()].join('\n') + '\n';
    await this.toAll(setup, this.main);
    this.phase = 'data';
  }

  private async enterPost(): Promise<void> {
    if (this.phase === 'pre') await this.enterData();
    this.phase = 'post';
  }

  private addTask(entry: Entry | null, text: string): void {
    const last = this.tasks[this.tasks.length - 1];
    // Statements of one entry stay together; a comment on an index or constraint goes with it.
    if (last && (last.entry === entry || (entry?.type === 'COMMENT' && last.kind !== 'barrier' && last.entry && /^(INDEX|CONSTRAINT) /.test(entry.name)))) {
      last.stmts.push(text);
      return;
    }
    let kind = kindOf(entry);
    const tables = kind === 'barrier' ? [] : tablesOf(kind, text);
    if (tables === null) kind = 'barrier';
    const shared = kind === 'index' && /^CREATE\s+(UNIQUE\s+)?INDEX\s/i.test(text);
    this.tasks.push({ stmts: [text], settings: [...this.settings.values()], tables: tables ?? [], kind, shared, entry, state: 'waiting' });
  }

  private async finish(): Promise<void> {
    // Every upstream stage has flushed: the object is whole and authenticated; does it check out?
    this.o.check?.();
    if (this.phase === 'pre') await this.enterData();
    // All data loaded before any index is built.
    await Promise.all(this.sessions.map((s) => s.sync()));
    await this.runTasks();
    // Our own statements are Unicode: the session speaks UTF8 for them (the dump set its own encoding).
    if (this.o.postamble?.length) await this.main.write(Buffer.from(["SET client_encoding = 'UTF8';", ...this.o.postamble].join('\n') + '\n', 'utf8'));
    await Promise.all(this.sessions.map((s) => s.end()));
  }

  /** The post-data tasks over every session, in dependency order (see the header). */
  private runTasks(): Promise<void> {
    this.stats.postTasks = this.tasks.length;
    const idle = [...this.sessions];
    let running = 0;
    return new Promise<void>((resolve, reject) => {
      const next = () => {
        if (this.failure) return reject(this.failure);
        if (this.tasks.every((t) => t.state === 'done')) return resolve();
        // Per table, what the unfinished tasks before this one take: CREATE INDEX takes a SHARE
        // lock (several may build on one table at once); ALTER TABLE takes a stronger one.
        const busyTables = new Map<string, 'shared' | 'exclusive'>();
        let unfinishedIndex = false;
        let unfinished = false;
        for (const t of this.tasks) {
          if (idle.length === 0) break;
          if (t.state === 'done') continue;
          const blocked =
            t.state !== 'waiting' ||
            (t.kind === 'barrier'
              ? unfinished
              : t.tables.some((x) => busyTables.has(x) && (!t.shared || busyTables.get(x) === 'exclusive')) || (t.kind === 'fk' && unfinishedIndex));
          if (!blocked) {
            const s = idle.shift()!;
            t.state = 'running';
            running++;
            this.stats.maxConcurrentPost = Math.max(this.stats.maxConcurrentPost, running);
            const text = [...t.settings, ...t.stmts].join('\n') + '\n';
            Promise.resolve(s.write(bytes(text)))
              .then(() => s.sync())
              .then(() => {
                t.state = 'done';
                running--;
                idle.push(s);
                next();
              }, reject);
          }
          unfinished = true;
          if (t.kind === 'barrier') break; // nothing after an unfinished barrier may start
          if (t.kind === 'index') unfinishedIndex = true;
          for (const x of t.tables) if (busyTables.get(x) !== 'exclusive') busyTables.set(x, t.shared ? 'shared' : 'exclusive');
        }
      };
      next();
    });
  }
}
