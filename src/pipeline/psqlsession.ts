/**
 * One psql session of the parallel restore: a supervised psql child fed on stdin (ON_ERROR_STOP,
 * each statement in its own transaction), whose progress we can wait for. `sync()` writes
 * `\echo TOKEN` and resolves when psql prints it: psql runs its input in order, so everything
 * written before has run. Query results go to /dev/null (`-o`), `\echo` to stdout.
 */
import { RestoreError } from '../support/errors.js';
import { Supervised, psqlFailure, type Exit } from './process.js';

export interface SessionSpawn {
  bin: string;
  env: NodeJS.ProcessEnv;
  secrets: Array<string | undefined>;
  onStderr?: (line: string) => void;
  name: string;
}

export class PsqlSession {
  readonly exited: Promise<Exit>;
  /** Bytes written and not yet known to have run (reset at each sync). */
  pendingBytes = 0;
  private readonly proc: Supervised;
  private failure: RestoreError | null = null;
  private seq = 0;
  private waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private out = '';
  private done = false;
  private onFail: ((e: RestoreError) => void) | undefined;

  constructor(private readonly o: SessionSpawn) {
    this.proc = new Supervised({ bin: o.bin, args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-o', '/dev/null', '-f', '-'], env: o.env, stdin: true, stdout: true, secrets: o.secrets, onStderr: o.onStderr, name: 'psql' });
    this.exited = this.proc.exited;
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (s: string) => {
      const lines = (this.out + s).split('\n');
      this.out = lines.pop() ?? '';
      for (const l of lines) {
        const w = this.waiting.get(l);
        if (w) {
          this.waiting.delete(l);
          w.resolve();
        }
      }
    });
    void this.exited.then(async (ex) => {
      this.done = true;
      if (ex.code !== 0 || this.waiting.size) {
        this.failure = psqlFailure(this.proc, await this.proc.facts(), { what: o.name });
        for (const w of this.waiting.values()) w.reject(this.failure);
        this.waiting.clear();
        this.onFail?.(this.failure);
      }
    });
  }

  /** Called once if psql fails while nobody waits on it. */
  onFailure(fn: (e: RestoreError) => void): void {
    this.onFail = fn;
  }

  get failed(): RestoreError | null {
    return this.failure;
  }

  private exitedEarly(): RestoreError {
    return new RestoreError('PSQL_EXITED', `${this.o.name}: psql exited before its input ended`);
  }

  /** Write; resolves when psql's pipe takes more (backpressure), rejects when psql has failed. */
  write(data: Buffer | string): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.done) return Promise.reject(this.exitedEarly());
    this.pendingBytes += data.length;
    const stdin = this.proc.stdin;
    if (stdin.write(data)) return undefined;
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        cleanup();
        resolve();
      };
      const onExit = () => {
        cleanup();
        reject(this.failure ?? this.exitedEarly());
      };
      const cleanup = () => {
        stdin.off('drain', onDrain);
        this.proc.child.off('exit', onExit);
      };
      stdin.once('drain', onDrain);
      this.proc.child.once('exit', onExit);
    });
  }

  /** True while psql's stdin pipe is full. */
  get blocked(): boolean {
    return this.proc.stdin.writableNeedDrain;
  }

  /** Resolves when everything written so far has run. */
  async sync(): Promise<void> {
    const token = `__pgbackup_sync_${process.pid}_${++this.seq}__`;
    const p = new Promise<void>((resolve, reject) => this.waiting.set(token, { resolve, reject }));
    p.catch(() => undefined); // rejected when psql fails; the write below reports that first
    await this.write(`\\echo ${token}\n`);
    await p;
    this.pendingBytes = 0;
  }

  /** End of input, and psql's exit 0. */
  async end(): Promise<void> {
    if (this.failure) throw this.failure;
    this.proc.stdin.end();
    const ex = await this.exited;
    // Set meanwhile by the exit or error handler (the getter defeats the narrowing above).
    if (this.failed) throw this.failed;
    if (ex.code !== 0) throw psqlFailure(this.proc, await this.proc.facts(), { what: this.o.name });
  }

  kill(): Promise<Exit> {
    if (!this.done) this.proc.cancel('SIGKILL');
    return this.exited;
  }
}
