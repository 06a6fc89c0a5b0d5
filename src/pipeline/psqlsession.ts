/**
 * One psql session of the parallel restore: a psql child fed on stdin (ON_ERROR_STOP, each
 * statement in its own transaction), whose progress we can wait for. `sync()` writes
 * `\echo TOKEN` and resolves when psql prints it: psql runs its input in order, so everything
 * written before has run. Query results go to /dev/null (`-o`), `\echo` to stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { RestoreError } from '../support/errors.js';
import { StderrTail, describeExit, exitOf, type Exit } from './process.js';

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
  private readonly child: ChildProcess;
  private readonly tail: StderrTail;
  private failure: RestoreError | null = null;
  private seq = 0;
  private waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private out = '';
  private done = false;
  private onFail: ((e: RestoreError) => void) | undefined;

  constructor(private readonly o: SessionSpawn) {
    this.child = spawn(o.bin, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-o', '/dev/null', '-f', '-'], { env: o.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let spawnError: Error | undefined;
    this.exited = exitOf(this.child, (e) => (spawnError = e));
    this.tail = new StderrTail(this.child, o.secrets, 20, o.onStderr);
    this.child.stdin!.on('error', () => undefined); // EPIPE after psql stopped: its exit says why
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (s: string) => {
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
        await this.tail.settled();
        const err = this.tail.text();
        this.failure = spawnError
          ? new RestoreError('SPAWN', `cannot run ${o.bin}: ${spawnError.message}`)
          : new RestoreError('PSQL_FAILED', `${o.name}: ${describeExit('psql', ex)}${err ? `:\n${err}` : ''}`);
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

  /** Write; resolves when psql's pipe takes more (backpressure), rejects when psql has failed. */
  write(data: Buffer | string): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.done) return Promise.reject(new RestoreError('PSQL_EXITED', `${this.o.name}: psql exited before its input ended`));
    this.pendingBytes += data.length;
    if (this.child.stdin!.write(data)) return undefined;
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        cleanup();
        resolve();
      };
      const onExit = () => {
        cleanup();
        reject(this.failure ?? new RestoreError('PSQL_EXITED', `${this.o.name}: psql exited before its input ended`));
      };
      const cleanup = () => {
        this.child.stdin!.off('drain', onDrain);
        this.child.off('exit', onExit);
      };
      this.child.stdin!.once('drain', onDrain);
      this.child.once('exit', onExit);
    });
  }

  /** True while psql's stdin pipe is full. */
  get blocked(): boolean {
    return this.child.stdin!.writableNeedDrain;
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
    this.child.stdin!.end();
    const ex = await this.exited;
    // Set meanwhile by the exit or error handler (the getter defeats the narrowing above).
    if (this.failed) throw this.failed;
    if (ex.code !== 0) throw new RestoreError('PSQL_FAILED', `${this.o.name}: ${describeExit('psql', ex)}`);
  }

  kill(): Promise<Exit> {
    if (!this.done) this.child.kill('SIGKILL');
    return this.exited;
  }
}
