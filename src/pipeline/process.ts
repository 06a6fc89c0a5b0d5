/**
 * The one process supervisor for pg_dump, pg_dumpall and psql: spawn, exit tracking, the
 * stderr tail (secrets scrubbed), the stall guard and cancellation, and at the end the facts of
 * the run (command, exit code, signal, stalled, cancelled, stderr tail) for the error that
 * reports a failure. The stages (dump.ts, psql.ts, psqlsession.ts) decide what the facts mean.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { basename } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { scrub } from '../support/secret.js';
import { DumpError, RestoreError, type ProcessFacts } from '../support/errors.js';
import { SECOND } from '../support/units.js';

export type { ProcessFacts };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves when the child has exited (never rejects; a spawn error becomes code -1). */
export function exitOf(child: ChildProcess, onError?: (e: Error) => void): Promise<Exit> {
  return new Promise((resolve) => {
    let done = false;
    child.once('error', (e) => {
      onError?.(e);
      if (!done) {
        done = true;
        resolve({ code: -1, signal: null });
      }
    });
    // 'exit', not 'close': a grandchild holding the pipes open must not keep us waiting.
    child.once('exit', (code, signal) => {
      if (!done) {
        done = true;
        resolve({ code, signal });
      }
    });
  });
}

/** Keeps the last `max` lines a child wrote to stderr, secrets scrubbed. */
export class StderrTail {
  private lines: string[] = [];
  private partial = '';
  constructor(private readonly child: ChildProcess, private readonly secrets: Array<string | undefined>, private readonly max = 20, onLine?: (l: string) => void) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      const parts = (this.partial + s).split('\n');
      this.partial = parts.pop() ?? '';
      for (const l of parts) {
        if (l.trim() === '') continue;
        this.lines.push(l);
        onLine?.(scrub(l, this.secrets));
        if (this.lines.length > this.max) this.lines.shift();
      }
    });
  }
  /** Wait (briefly) until the child's stderr is fully read. */
  async settled(ms = 500): Promise<void> {
    const s = this.child.stderr;
    if (!s || s.readableEnded || s.destroyed) return;
    await new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      s.once('close', () => {
        clearTimeout(t);
        r();
      });
    });
  }
  text(): string {
    const all = this.partial.trim() ? [...this.lines, this.partial] : this.lines;
    return scrub(all.join('\n'), this.secrets);
  }
}

export interface SpawnSpec {
  bin: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Pipes for stdin / stdout (stderr is always read: its tail goes into the facts). */
  stdin?: boolean;
  stdout?: boolean;
  /** Secrets to scrub from stderr before it is shown or kept. */
  secrets: Array<string | undefined>;
  onStderr?: (line: string) => void;
  /** The command in messages; default: the binary's file name. */
  name?: string;
  /** Kill the child (SIGKILL) when `touch()` was not called for this long (ms); the facts say `stalled`. */
  stallMs?: number | undefined;
  /** Aborting sends SIGTERM; the facts say `cancelled`. */
  signal?: AbortSignal;
  /** Lines of stderr kept for the facts. */
  tailLines?: number;
}

/** One supervised child process. */
export class Supervised {
  readonly child: ChildProcess;
  readonly name: string;
  /** Resolves at the child's exit (never rejects; a spawn error is code -1 and `spawnError`). */
  readonly exited: Promise<Exit>;
  spawnError: Error | undefined;
  private readonly tail: StderrTail;
  private stalled = false;
  private cancelled = false;
  private timer: NodeJS.Timeout | undefined;
  private exit: Exit | null = null;

  constructor(private readonly spec: SpawnSpec) {
    this.name = spec.name ?? basename(spec.bin);
    this.child = spawn(spec.bin, [...spec.args], { env: spec.env, stdio: [spec.stdin ? 'pipe' : 'ignore', spec.stdout ? 'pipe' : 'ignore', 'pipe'] });
    this.tail = new StderrTail(this.child, spec.secrets, spec.tailLines ?? 20, spec.onStderr);
    // EPIPE after the child stopped reading: its exit says why.
    this.child.stdin?.on('error', () => undefined);
    this.exited = exitOf(this.child, (e) => (this.spawnError = e)).then((ex) => {
      this.exit = ex;
      clearTimeout(this.timer);
      spec.signal?.removeEventListener('abort', this.onAbort);
      return ex;
    });
    if (spec.signal?.aborted) this.onAbort();
    else spec.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.touch();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
  get stdin(): Writable {
    return this.child.stdin!;
  }
  get stdout(): Readable {
    return this.child.stdout!;
  }

  /** Still running: not exited, not killed by a signal. */
  get running(): boolean {
    return this.exit === null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The child made progress: restart the stall guard. */
  touch(): void {
    if (!this.spec.stallMs || !this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.stalled = true;
      this.kill('SIGKILL');
    }, this.spec.stallMs);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal);
  }

  /** Stop the stall guard (the child's output is no longer awaited). */
  quiet(): void {
    clearTimeout(this.timer);
  }

  /** Stop the child because the run no longer wants it (interrupt, timeout, another stage failed); the facts say `cancelled`. */
  cancel(signal: NodeJS.Signals): void {
    if (!this.running) return;
    this.cancelled = true;
    this.kill(signal);
  }

  private readonly onAbort = (): void => this.cancel('SIGTERM');

  /** The facts of the run, once it has exited and its stderr was read (waited for briefly). */
  async facts(): Promise<ProcessFacts> {
    await this.exited;
    await this.tail.settled();
    return this.factsNow();
  }

  /** The facts so far, the stderr read up to now (after the exit: for a report that cannot wait). */
  factsNow(): ProcessFacts {
    const ex = this.exit ?? { code: this.child.exitCode, signal: this.child.signalCode };
    return {
      command: this.name,
      exitCode: this.spawnError ? null : ex.code,
      signal: ex.signal,
      stalled: this.stalled,
      cancelled: this.cancelled,
      stderrTail: this.tail.text(),
      spawnError: this.spawnError?.message,
    };
  }

  /** What happened, in words: "psql exited with code 3", "pg_dump was killed by SIGTERM". */
  static describe(f: ProcessFacts): string {
    if (f.spawnError !== undefined) return `${f.command} could not be started`;
    if (f.signal) return `${f.command} was killed by ${f.signal}`;
    return `${f.command} exited with code ${f.exitCode}`;
  }

  /** "cannot run BIN: why" for a child that could not be started, else undefined. */
  spawnProblem(f: ProcessFacts): string | undefined {
    return f.spawnError !== undefined ? `cannot run ${this.spec.bin}: ${f.spawnError}` : undefined;
  }

  /** The stall guard's kill in words. */
  stallProblem(f: ProcessFacts): string | undefined {
    return f.stalled ? `${f.command} wrote nothing for ${Math.round((this.spec.stallMs ?? 0) / SECOND)}s and was killed (stall guard)` : undefined;
  }
}

/** The stderr tail appended to a message, on its own lines. */
export function withTail(message: string, f: ProcessFacts): string {
  return f.stderrTail ? `${message}:\n${f.stderrTail}` : message;
}

/** A failed pg_dump / pg_dumpall run as a DumpError carrying its facts. */
export function dumpFailure(p: Supervised, f: ProcessFacts): DumpError {
  const stall = p.stallProblem(f);
  if (stall) return new DumpError('STALLED', stall, { process: f });
  const spawnProblem = p.spawnProblem(f);
  if (spawnProblem) return new DumpError('SPAWN', spawnProblem, { process: f, cause: p.spawnError });
  return new DumpError('DUMP_FAILED', withTail(Supervised.describe(f), f), { process: f });
}

/** A failed psql run as a RestoreError carrying its facts; `what` prefixes the message (a session's name), `after` follows the exit. */
export function psqlFailure(p: Supervised, f: ProcessFacts, o: { what?: string; after?: string } = {}): RestoreError {
  const spawnProblem = p.spawnProblem(f);
  if (spawnProblem) return new RestoreError('SPAWN', spawnProblem, { process: f, cause: p.spawnError });
  return new RestoreError('PSQL_FAILED', withTail(`${o.what ? `${o.what}: ` : ''}${Supervised.describe(f)}${o.after ?? ''}`, f), { process: f });
}
