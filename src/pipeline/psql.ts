/**
 * The load stage: psql as a supervised child process, fed on stdin, run with ON_ERROR_STOP=1 in
 * one transaction (-1 -f -). Its sink ends psql's input cleanly only when the whole upstream
 * succeeded; when anything upstream fails the sink kills psql (SIGKILL) before its input
 * closes, so psql never sees a clean end of input and the server rolls the transaction back.
 */
import { Writable } from 'node:stream';
import { RestoreError } from '../support/errors.js';
import { Supervised, psqlFailure, type Exit } from './process.js';

export interface PsqlSpawn {
  bin: string;
  env: NodeJS.ProcessEnv;
  secrets: Array<string | undefined>;
  extraArgs?: string[];
  onStderr?: (line: string) => void;
  /**
   * Called once the input is complete, before psql's end of input: more input to send last, or
   * nothing (or a promise of it). Throwing (or rejecting) withholds the end of input, as `check` does.
   */
  beforeEnd?: () => string | undefined | Promise<string | undefined>;
  /** Called after `beforeEnd`: throwing withholds the end of input (psql is killed, nothing commits). */
  check?: () => void;
}

export function psqlArgs(extra: string[] = []): string[] {
  return ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', ...extra, '-f', '-'];
}

const exitedEarly = () => new RestoreError('PSQL_EXITED', 'psql exited before its input ended');

export class PsqlSink extends Writable {
  readonly exited: Promise<Exit>;
  private readonly proc: Supervised;
  private failure: RestoreError | null = null;
  private pending: ((e?: Error | null) => void) | null = null;
  private hasExited = false;

  constructor(private readonly o: PsqlSpawn) {
    super({ highWaterMark: 1 << 20 });
    this.proc = new Supervised({ bin: o.bin, args: psqlArgs(o.extraArgs), env: o.env, stdin: true, secrets: o.secrets, onStderr: o.onStderr, name: 'psql' });
    this.exited = this.proc.exited;
    void this.exited.then((ex) => {
      this.hasExited = true;
      // No wait for the rest of stderr here: a write waiting on psql's pipe fails at once (the
      // tail is what psql said up to its exit; the facts are complete for everything else).
      if (ex.code !== 0) this.failure = psqlFailure(this.proc, this.proc.factsNow(), { after: '; the transaction was rolled back' });
      const p = this.pending;
      this.pending = null;
      p?.(this.failure ?? exitedEarly());
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.failure) return cb(this.failure);
    if (this.hasExited) return cb(exitedEarly());
    if (this.proc.stdin.write(chunk)) return cb();
    this.pending = cb;
    this.proc.stdin.once('drain', () => {
      const p = this.pending;
      this.pending = null;
      p?.();
    });
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.failure) return cb(this.failure);
    const withhold = (e: unknown) => {
      // psql must not see a clean end of input: kill it, then report why.
      this.proc.cancel('SIGKILL');
      void this.exited.then(() => {
        this.proc.stdin.destroy();
        cb(e as Error);
      });
    };
    void (async () => {
      let last: string | undefined;
      try {
        last = await this.o.beforeEnd?.();
      } catch (e) {
        return withhold(e);
      }
      // psql failed (or the load was destroyed) while the last input was being made.
      if (this.failure) return cb(this.failure);
      if (this.hasExited) return cb(exitedEarly());
      if (this.destroyed) return cb(new RestoreError('PSQL_EXITED', 'the load was stopped before its input ended'));
      try {
        this.o.check?.();
      } catch (e) {
        return withhold(e);
      }
      if (last) this.proc.stdin.write(last);
      this.proc.stdin.end();
      void this.exited.then(() => cb(this.failure));
    })();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.hasExited) return cb(err);
    // Upstream failed or we were interrupted: psql must not see a clean end of input.
    this.proc.cancel('SIGKILL');
    void this.exited.then(() => {
      this.proc.stdin.destroy();
      cb(err);
    });
  }
}
