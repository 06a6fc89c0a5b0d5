/**
 * `--prometheus FILE`: a node_exporter textfile, updated by backup, verify and status. The file
 * is read (counters carry on across runs; other databases' and targets' series stay), updated
 * and replaced atomically: written to a hidden temporary file in the same folder (not ending in
 * .prom, so the collector never reads it half-written), fsynced, renamed over FILE.
 */
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import type { Context } from '../support/context.js';
import { StorageError, messageOf } from '../support/errors.js';
import { addToCounter, parseText, renderText, sameSeries, setSample, type Sample } from '../model/prometheus.js';
import type { Target } from '../storage/index.js';

/** The `target` label: s3://bucket/prefix/ or the folder's absolute path (never credentials: a target holds none). */
export function targetLabel(t: Target): string {
  return t.kind === 's3' ? `s3://${t.bucket}/${t.prefix}` : resolve(t.path);
}

export async function readMetrics(file: string): Promise<{ samples: Sample[]; bad: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { samples: [], bad: [] };
    throw e;
  }
  return parseText(text);
}

export async function writeMetricsAtomically(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const h = await open(tmp, 'wx', 0o644);
    try {
      await h.writeFile(text);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Read FILE, change its samples, write it back atomically. */
export async function updateMetrics(file: string, change: (samples: Sample[]) => Sample[], warn: (msg: string) => void): Promise<void> {
  // The file is replaced by a rename: a device or a pipe there (/dev/stdout) would be replaced too.
  const st = await stat(file).catch(() => null);
  if (st && !st.isFile()) throw new Error(`${file} is not a regular file (a node_exporter textfile is read and rewritten)`);
  const { samples, bad } = await readMetrics(file);
  if (bad.length) warn(`${file}: ${bad.length} line(s) that are not samples were dropped (first: ${JSON.stringify(bad[0]!.slice(0, 80))})`);
  await writeMetricsAtomically(file, renderText(change(samples)));
}

export interface BackupFacts {
  /** When it finished. */
  at: Date;
  sizeBytes: number;
  durationMs: number | null;
}

/** What one run learned, written to the file once at its end. */
export class MetricsRun {
  private changes: Array<(s: Sample[]) => Sample[]> = [];
  constructor(
    readonly file: string | undefined,
    readonly command: 'backup' | 'verify' | 'status',
  ) {}

  /** The newest complete full backup of `database` in `target`. */
  backup(database: string, target: string, f: BackupFacts): void {
    const labels = { database, target };
    this.changes.push((s) => {
      let out = setSample(s, { name: 'pgbackup_last_success_timestamp_seconds', labels, value: Math.floor(f.at.getTime() / 1000) });
      out = setSample(out, { name: 'pgbackup_last_size_bytes', labels, value: f.sizeBytes });
      if (f.durationMs !== null) out = setSample(out, { name: 'pgbackup_last_duration_seconds', labels, value: f.durationMs / 1000 });
      return this.command === 'status' ? out : addToCounter(out, 'pgbackup_failures_total', { command: this.command, database, target }, 0);
    });
  }

  /** `database` has no complete full backup in `target`: its backup gauges go. */
  noBackup(database: string, target: string): void {
    const labels = { database, target };
    const names = ['pgbackup_last_success_timestamp_seconds', 'pgbackup_last_size_bytes', 'pgbackup_last_duration_seconds'];
    this.changes.push((s) => s.filter((x) => !names.some((name) => sameSeries(x, { name, labels }))));
  }

  /** A full backup of `database` passed verify at `at`; `latest`: set it even when older than what the file has. */
  verified(database: string, target: string, at: Date, latest = false): void {
    const labels = { database, target };
    const value = Math.floor(at.getTime() / 1000);
    this.changes.push((s) => {
      const old = s.find((x) => sameSeries(x, { name: 'pgbackup_last_verify_timestamp_seconds', labels }));
      const out = !latest && old && old.value >= value ? s : setSample(s, { name: 'pgbackup_last_verify_timestamp_seconds', labels, value });
      return this.command === 'status' ? out : addToCounter(out, 'pgbackup_failures_total', { command: this.command, database, target }, 0);
    });
  }

  failure(database: string, target: string, at = new Date()): void {
    const labels = { command: this.command, database, target };
    this.changes.push((s) =>
      setSample(addToCounter(s, 'pgbackup_failures_total', labels), { name: 'pgbackup_last_failure_timestamp_seconds', labels, value: Math.floor(at.getTime() / 1000) }),
    );
  }

  /**
   * Write the file. A file that cannot be written is logged as an error but does not change
   * the run's outcome of backup and verify: a backup that worked is not reported as failed
   * because of its metrics.
   */
  async write(ctx: Context, strict = false): Promise<void> {
    if (!this.file) return;
    const file = this.file;
    try {
      await updateMetrics(file, (s) => this.changes.reduce((acc, f) => f(acc), s), (m) => ctx.log.warn(m));
    } catch (e) {
      // status --prometheus: the file is what was asked for, its failure is the run's (exit 4).
      if (strict) throw new StorageError('METRICS', `cannot write the metrics file ${file}: ${messageOf(e)}`, { cause: e });
      ctx.log.error({ file, err: messageOf(e) }, `could not write the metrics file ${file}: ${messageOf(e)}`);
    }
  }
}
