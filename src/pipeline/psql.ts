/**
 * The load stage: psql as a child process, fed on stdin, run with ON_ERROR_STOP=1 in one
 * transaction (-1 -f -). Its sink ends psql's input cleanly only when the whole upstream
 * succeeded; when anything upstream fails the sink kills psql (SIGKILL) before its input
 * closes, so psql never sees a clean end of input and the server rolls the transaction back.
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { RestoreError } from '../support/errors.js';
import { StderrTail, describeExit, exitOf, type Exit } from './process.js';

export interface PsqlSpawn {
  bin: string;
  env: NodeJS.ProcessEnv;
  secrets: Array<string | undefined>;
  extraArgs?: string[];
  onStderr?: (line: string) => void;
  /** Called once the input is complete, before psql's end of input: more input to send last, or nothing. */
  beforeEnd?: () => string | undefined;
  /** Called after `beforeEnd`: throwing withholds the end of input (psql is killed, nothing commits). */
  check?: () => void;
}

export function psqlArgs(extra: string[] = []): string[] {
  return ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', ...extra, '-f', '-'];
}

export class PsqlSink extends Writable {
  readonly exited: Promise<Exit>;
  private readonly child;
  private readonly tail: StderrTail;
  private failure: RestoreError | null = null;
  private pending: ((e?: Error | null) => void) | null = null;
  private hasExited = false;

  constructor(private readonly o: PsqlSpawn) {
    super({ highWaterMark: 1 << 20 });
    this.child = spawn(o.bin, psqlArgs(o.extraArgs), { env: o.env, stdio: ['pipe', 'ignore', 'pipe'] });
    let spawnError: Error | undefined;
    this.exited = exitOf(this.child, (e) => (spawnError = e));
    this.tail = new StderrTail(this.child, o.secrets, 20, o.onStderr);
    this.child.stdin.on('error', () => undefined); // EPIPE after psql stopped: its exit says why
    void this.exited.then((ex) => {
      this.hasExited = true;
      if (ex.code !== 0) {
        const err = this.tail.text();
        this.failure = spawnError
          ? new RestoreError('SPAWN', `cannot run ${o.bin}: ${spawnError.message}`)
          : new RestoreError('PSQL_FAILED', `${describeExit('psql', ex)}; the transaction was rolled back${err ? `:\n${err}` : ''}`);
      }
      const p = this.pending;
      this.pending = null;
      p?.(this.failure ?? new RestoreError('PSQL_EXITED', 'psql exited before its input ended'));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.failure) return cb(this.failure);
    if (this.hasExited) return cb(new RestoreError('PSQL_EXITED', 'psql exited before its input ended'));
    if (this.child.stdin.write(chunk)) return cb();
    this.pending = cb;
    this.child.stdin.once('drain', () => {
      const p = this.pending;
      this.pending = null;
      p?.();
    });
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.failure) return cb(this.failure);
    let last: string | undefined;
    try {
      last = this.o.beforeEnd?.();
      this.o.check?.();
    } catch (e) {
      // psql must not see a clean end of input: kill it, then report why.
      this.child.kill('SIGKILL');
      void this.exited.then(() => {
        this.child.stdin.destroy();
        cb(e as Error);
      });
      return;
    }
    if (last) this.child.stdin.write(last);
    this.child.stdin.end();
    void this.exited.then(() => cb(this.failure));
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.hasExited) return cb(err);
    // Upstream failed or we were interrupted: psql must not see a clean end of input.
    this.child.kill('SIGKILL');
    void this.exited.then(() => {
      this.child.stdin.destroy();
      cb(err);
    });
  }
}
