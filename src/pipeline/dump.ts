/**
 * The dump stage: pg_dump (or pg_dumpall) as a supervised child process. Its output stream ends
 * only after the process exited 0; any other exit makes the stream fail with DumpError (exit 3,
 * carrying the process's facts), so a truncated dump can never reach the storage as a complete object.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { MINUTE } from '../support/units.js';
import { Supervised, dumpFailure, type Exit } from './process.js';

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
  const proc = new Supervised({ bin: o.bin, args: o.args, env: o.env, stdout: true, secrets: o.secrets, onStderr: o.onStderr, stallMs: o.stallMs, signal: o.signal });
  const { exited } = proc;
  const guard = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      proc.touch();
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      // The end of pg_dump's output counts only once it exited 0; any other exit fails the
      // stream through the exit watcher below, so this callback never runs for it.
      void exited.then((ex) => {
        if (ex.code === 0) cb();
      });
    },
    destroy(err, cb) {
      proc.quiet();
      proc.cancel('SIGTERM');
      cb(err);
    },
  });
  // A spawn failure leaves no stdout: the exit watcher reports it.
  proc.child.stdout?.on('error', (e) => guard.destroy(e));
  // A failed exit fails the stream at once, whether its output has ended or something still
  // holds pg_dump's stdout open.
  void exited.then(async (ex) => {
    if (ex.code === 0 || guard.destroyed) return;
    const facts = await proc.facts();
    if (!guard.destroyed) {
      proc.child.stdout?.destroy();
      guard.destroy(dumpFailure(proc, facts));
    }
  });
  proc.child.stdout?.pipe(guard);
  return { stream: guard, exited, pid: proc.pid };
}
