/** The --prometheus file is read and replaced by a rename: never done to a device or a pipe. */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { updateMetrics } from '../../../src/ops/metrics.js';
import { tempDir } from '../../support/tmp.js';

describe('updateMetrics', () => {
  it('refuses a path that is not a regular file and leaves it as it was', async () => {
    const dir = tempDir('pgbackup-prom-');
    const fifo = join(dir, 'm.prom');
    execFileSync('mkfifo', [fifo]);
    await expect(updateMetrics(fifo, (s) => s, () => undefined)).rejects.toThrow(/not a regular file/);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readdirSync(dir)).toEqual(['m.prom']);
  });

  it('writes a regular file', async () => {
    const dir = tempDir('pgbackup-prom-');
    const file = join(dir, 'm.prom');
    await updateMetrics(file, () => [{ name: 'x_total', labels: {}, value: 1 }], () => undefined);
    expect(readFileSync(file, 'utf8')).toContain('x_total');
  });
});
