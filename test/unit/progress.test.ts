import { describe, it, expect, vi, afterEach } from 'vitest';
import { clock, createProgress, figures, progressLine, TermLine, ERASE_LINE } from '../../src/support/progress.js';
import type { Logger } from '../../src/support/log.js';

describe('progress figures', () => {
  it('percentage, average rate and ETA from bytes done of a total', () => {
    const f = figures({ done: 50 * 1024 * 1024, total: 200 * 1024 * 1024 }, 10_000);
    expect(f.percent).toBe(25);
    expect(f.rate).toBe(5 * 1024 * 1024);
    expect(f.etaSeconds).toBe(30);
  });
  it('no total: no percentage, no ETA', () => {
    const f = figures({ done: 1000 }, 1000);
    expect(f.percent).toBeUndefined();
    expect(f.etaSeconds).toBeUndefined();
    expect(progressLine('fetch', { done: 1000 }, 1000)).toBe('fetch    1000 B  1000 B/s  ETA ?');
  });
  it('the terminal line', () => {
    expect(progressLine('backup', { done: 120 * 1024 * 1024, total: 240 * 1024 * 1024, extra: { stored: 30 * 1024 * 1024 } }, 4000)).toBe(
      'backup    50%  120.0 MiB of 240.0 MiB  stored 30.0 MiB  30.0 MiB/s  ETA 0:04',
    );
    expect(clock(3725)).toBe('1:02:05');
    expect(clock(65)).toBe('1:05');
  });
  it('whole bytes in the line even for an estimated total and a fractional rate', () => {
    expect(progressLine('backup', { done: 100, total: 500 / 0.95 }, 3000)).toBe('backup    19%  100 B of 526 B  33 B/s  ETA 0:13');
  });
  it('never over 100%', () => {
    expect(figures({ done: 300, total: 200 }, 1000).percent).toBe(100);
  });
});

describe('the terminal line and the reporters', () => {
  afterEach(() => vi.useRealTimers());
  const silent = { info: () => undefined } as unknown as Logger;

  it('draws in place, cut to the terminal width, and erases only what it drew', () => {
    const out: string[] = [];
    const line = new TermLine((t) => out.push(t), () => 20);
    line.clear();
    expect(out).toEqual([]);
    line.draw('backup    50%  120.0 MiB of 240.0 MiB');
    expect(out).toEqual([ERASE_LINE + 'backup    50%  120.']);
    line.clear();
    line.clear();
    expect(out).toEqual([ERASE_LINE + 'backup    50%  120.', ERASE_LINE]);
  });

  it('the newest of overlapping steps draws; stopping erases; close() stops what is left', () => {
    vi.useFakeTimers();
    const out: string[] = [];
    const line = new TermLine((t) => out.push(t));
    const p = createProgress({ mode: 'tty', log: silent, intervalMs: 10_000, line, redrawMs: 100 });
    const stopRestore = p.start!('restore', () => ({ done: 1, total: 10 }));
    const stopSafety = p.start!('safety', () => ({ done: 2, total: 10 }));
    vi.advanceTimersByTime(100);
    expect(out.filter((t) => t.includes('restore'))).toEqual([]);
    expect(out.at(-1)!.startsWith(ERASE_LINE + 'safety ')).toBe(true);
    stopSafety();
    expect(out.at(-1)).toBe(ERASE_LINE);
    vi.advanceTimersByTime(100);
    expect(out.at(-1)!.startsWith(ERASE_LINE + 'restore ')).toBe(true);
    p.close();
    expect(out.at(-1)).toBe(ERASE_LINE);
    const n = out.length;
    vi.advanceTimersByTime(1000);
    expect(out.length).toBe(n);
    stopRestore();
    expect(out.length).toBe(n);
  });

  it('JSON mode logs an event each interval; off reports nothing', () => {
    vi.useFakeTimers();
    const events: Array<Record<string, unknown>> = [];
    const log = { info: (o: Record<string, unknown>) => events.push(o) } as unknown as Logger;
    const p = createProgress({ mode: 'json', log, intervalMs: 1000 });
    let done = 0;
    const stop = p.start!('verify', () => ({ done, total: 4000 }));
    done = 1000;
    vi.advanceTimersByTime(1000);
    done = 2000;
    vi.advanceTimersByTime(1000);
    stop();
    vi.advanceTimersByTime(5000);
    expect(events).toEqual([
      { event: 'progress', step: 'verify', doneBytes: 1000, totalBytes: 4000, percent: 25, bytesPerSecond: 1000, etaSeconds: 3, elapsedSeconds: 1 },
      { event: 'progress', step: 'verify', doneBytes: 2000, totalBytes: 4000, percent: 50, bytesPerSecond: 1000, etaSeconds: 2, elapsedSeconds: 2 },
    ]);
    expect(createProgress({ mode: 'off', log, intervalMs: 1000 }).start).toBeUndefined();
  });
});
