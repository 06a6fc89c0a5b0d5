/**
 * Progress of long steps (backup, restore, verify, fetch, rekey), polled from the step's own
 * counters: on a terminal one line rewritten in place (percentage, rate, ETA); in JSON logs a
 * `progress` event every interval (--progress-interval, default 10 s); else nothing.
 */
import type { Logger } from './log.js';
import { formatBytes } from './units.js';

export interface ProgressState {
  /** Bytes done (backup: SQL bytes dumped; the others: stored bytes read or copied). */
  done: number;
  /** The expected total (backup: an estimate, corrected as the dump runs); undefined when unknown. */
  total?: number | undefined;
  /** More to show, e.g. the bytes stored so far. */
  extra?: Record<string, number> | undefined;
}

/** Start reporting `what`, polling `poll`; returns the function that stops it (and clears the line). */
export type ProgressFn = (what: string, poll: () => ProgressState) => () => void;

export function clock(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

export interface Figures {
  percent: number | undefined;
  rate: number;
  etaSeconds: number | undefined;
}

/** Percentage, average rate (bytes/s since the start) and ETA for a state `elapsedMs` into the step. */
export function figures(s: ProgressState, elapsedMs: number): Figures {
  const rate = elapsedMs > 0 ? (s.done / elapsedMs) * 1000 : 0;
  const percent = s.total && s.total > 0 ? Math.min(100, (s.done / s.total) * 100) : undefined;
  const etaSeconds = s.total && rate > 0 ? Math.max(0, (s.total - s.done) / rate) : undefined;
  return { percent, rate, etaSeconds };
}

/** The terminal line: "backup    42%  120.0 MiB of 290.0 MiB  35.2 MiB/s  ETA 0:05". */
export function progressLine(what: string, s: ProgressState, elapsedMs: number): string {
  const f = figures(s, elapsedMs);
  const parts = [what.padEnd(7)];
  if (f.percent !== undefined) parts.push(`${f.percent.toFixed(0).padStart(3)}%`);
  parts.push(s.total ? `${formatBytes(s.done)} of ${formatBytes(Math.round(s.total))}` : formatBytes(s.done));
  for (const [k, v] of Object.entries(s.extra ?? {})) parts.push(`${k} ${formatBytes(v)}`);
  parts.push(`${formatBytes(Math.round(f.rate))}/s`);
  parts.push(`ETA ${f.etaSeconds === undefined ? '?' : clock(f.etaSeconds)}`);
  return parts.join('  ');
}

/** Carriage return + erase the whole line (ESC [2K). */
export const ERASE_LINE = '\r\x1b[2K';

/**
 * The one line a terminal's progress is drawn on. Everything else written to stderr (log lines,
 * the final error) erases it first, so text never lands behind a half-drawn figure; the next
 * tick draws it again below.
 */
export class TermLine {
  private shown = false;
  constructor(
    private readonly write: (s: string) => void,
    /** The terminal's width: a longer line would wrap, and ESC [2K erases only its last row. */
    private readonly columns: () => number | undefined = () => undefined,
  ) {}
  draw(text: string): void {
    const w = this.columns();
    this.write(ERASE_LINE + (w && w > 1 && text.length >= w ? text.slice(0, w - 1) : text));
    this.shown = true;
  }
  clear(): void {
    if (!this.shown) return;
    this.shown = false;
    this.write(ERASE_LINE);
  }
}

export interface Progress {
  /** For the context: undefined when nothing is reported (off). */
  start: ProgressFn | undefined;
  /** Stop every report still running and erase the line (the command is over, or failed). */
  close(): void;
}

export function createProgress(o: {
  mode: 'tty' | 'json' | 'off';
  log: Logger;
  intervalMs: number;
  /** The terminal line (mode tty). */
  line?: TermLine | undefined;
  /** Terminal redraws (default 500 ms). */
  redrawMs?: number;
}): Progress {
  const running: Array<() => void> = [];
  const close = () => {
    for (const stop of [...running]) stop();
    o.line?.clear();
  };
  if (o.mode === 'off' || (o.mode === 'tty' && !o.line)) return { start: undefined, close };
  const start: ProgressFn = (what, poll) => {
    const t0 = Date.now();
    const tick = () => {
      let s: ProgressState;
      try {
        s = poll();
      } catch {
        return;
      }
      const elapsed = Date.now() - t0;
      if (o.mode === 'tty') {
        // Steps that overlap (a read held while another step runs) share the line: the newest draws.
        if (running[running.length - 1] === stop) o.line!.draw(progressLine(what, s, elapsed));
        return;
      }
      const f = figures(s, elapsed);
      o.log.info(
        {
          event: 'progress',
          step: what,
          doneBytes: s.done,
          ...(s.total ? { totalBytes: Math.round(s.total) } : {}),
          ...(f.percent !== undefined ? { percent: Math.round(f.percent * 10) / 10 } : {}),
          bytesPerSecond: Math.round(f.rate),
          ...(f.etaSeconds !== undefined ? { etaSeconds: Math.round(f.etaSeconds) } : {}),
          elapsedSeconds: Math.round(elapsed / 1000),
          ...Object.fromEntries(Object.entries(s.extra ?? {}).map(([k, v]) => [`${k}Bytes`, v])),
        },
        'progress',
      );
    };
    const timer = setInterval(tick, o.mode === 'tty' ? (o.redrawMs ?? 500) : o.intervalMs);
    timer.unref();
    const stop = () => {
      const i = running.indexOf(stop);
      if (i < 0) return;
      running.splice(i, 1);
      clearInterval(timer);
      o.line?.clear();
    };
    running.push(stop);
    return stop;
  };
  return { start, close };
}
