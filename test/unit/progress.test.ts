import { describe, it, expect } from 'vitest';
import { clock, figures, progressLine } from '../../src/support/progress.js';

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
  it('never over 100%', () => {
    expect(figures({ done: 300, total: 200 }, 1000).percent).toBe(100);
  });
});
