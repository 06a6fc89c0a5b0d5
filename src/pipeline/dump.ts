/**
 * The dump stage: pg_dump (or pg_dumpall) as a child process. Its output stream ends only
 * after the process exited 0; any other exit makes the stream fail with DumpError (exit 3),
 * so a truncated dump can never reach the storage as a complete object.
 */
import { spawn } from 'node:child_process';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { DumpError } from '../support/errors.js';
import { MINUTE } from '../support/units.js';
import { StderrTail, describeExit, exitOf, type Exit } from './process.js';

/** --stall-timeout's default: pg_dump may write nothing this long (a lock wait, a huge row) before it is killed. */
export const DEFAULT_STALL_MS = 10 * MINUTE;

export interface DumpSpawn {
  bin: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** Secrets to scrub from pg_dump's stderr before it is shown. */
  secrets: Array<string | undefined>;
  /** Kill pg_dump when it writes nothing for this long (ms). */
  stallMs?: number | undefined;
  onStderr?: (line: string) => void;
}

export interface Dump {
  stream: Readable;
  exited: Promise<Exit>;
  pid: number | undefined;
}

export function startDump(o: DumpSpawn): Dump {
  const name = o.bin.split('/').pop() ?? 'pg_dump';
  const child = spawn(o.bin, o.args, { env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let spawnError: Error | undefined;
  const exited = exitOf(child, (e) => (spawnError = e));
  const tail = new StderrTail(child, o.secrets, 20, o.onStderr);
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    if (!o.stallMs) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      child.kill('SIGKILL');
    }, o.stallMs);
  };
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  o.signal.addEventListener('abort', kill, { once: true });
  arm();
  const guard = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      arm();
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      // The end of pg_dump's output counts only once it exited 0; any other exit fails the
      // stream through the exit watcher below, so this callback never runs for it.
      void exited.then((ex) => {
        clearTimeout(timer);
        if (ex.code === 0) cb();
      });
    },
    destroy(err, cb) {
      clearTimeout(timer);
      kill();
      cb(err);
    },
  });
  const failure = (ex: Exit): DumpError => {
    if (stalled) return new DumpError('STALLED', `${name} wrote nothing for ${Math.round(o.stallMs! / 1000)}s and was killed (stall guard)`);
    if (spawnError) return new DumpError('SPAWN', `cannot run ${o.bin}: ${spawnError.message}`, { cause: spawnError });
    const err = tail.text();
    return new DumpError('DUMP_FAILED', `${describeExit(name, ex)}${err ? `:\n${err}` : ''}`);
  };
  child.stdout.on('error', (e) => guard.destroy(e));
  // A failed exit fails the stream at once, whether its output has ended or something still
  // holds pg_dump's stdout open.
  void exited.then(async (ex) => {
    o.signal.removeEventListener('abort', kill);
    if (ex.code === 0 || guard.destroyed) return;
    await tail.settled();
    if (!guard.destroyed) {
      child.stdout.destroy();
      guard.destroy(failure(ex));
    }
  });
  child.stdout.pipe(guard);
  return { stream: guard, exited, pid: child.pid };
}
