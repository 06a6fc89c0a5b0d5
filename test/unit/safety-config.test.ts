import { describe, it, expect } from 'vitest';
import { parseCli } from '../../src/cli/args.js';
import { parseAt, restoreConfig } from '../../src/config/config.js';
import { UsageError } from '../../src/support/errors.js';

describe('--at: times without a zone are UTC', () => {
  it('reads ISO times without a zone, with a space, date-only and key stamps as UTC', () => {
    expect(parseAt('2026-11-29T07:00:00').toISOString()).toBe('2026-11-29T07:00:00.000Z');
    expect(parseAt('2026-11-29T07:00').toISOString()).toBe('2026-11-29T07:00:00.000Z');
    expect(parseAt('2026-11-29 07:00:00').toISOString()).toBe('2026-11-29T07:00:00.000Z');
    expect(parseAt('2026-11-29').toISOString()).toBe('2026-11-29T23:59:59.000Z');
    expect(parseAt('20261129T070000Z').toISOString()).toBe('2026-11-29T07:00:00.000Z');
    expect(parseAt('2026-11-29T07:00:00+02:00').toISOString()).toBe('2026-11-29T05:00:00.000Z');
    expect(parseAt('2026-11-29T07:00:00z').toISOString()).toBe('2026-11-29T07:00:00.000Z');
    expect(Number.isNaN(parseAt('Nov 29 2026 07:00').getTime())).toBe(true);
  });
  it('does not depend on the machine\'s time zone', () => {
    const tz = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(parseAt('2026-11-29T07:00:00').toISOString()).toBe('2026-11-29T07:00:00.000Z');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });
});

describe('restore --to', () => {
  it('is required: the target never comes from DATABASE_URL or PG* alone', () => {
    const env = { DATABASE_URL: 'postgres://u:p@prod:5432/app', PGHOST: 'prod', PGDATABASE: 'app' };
    let err: unknown;
    try {
      restoreConfig(parseCli(['restore', '--latest', '--database', 'app']), env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toMatch(/--to: required[\s\S]*never takes its target from DATABASE_URL or PG\*/);
    expect(restoreConfig(parseCli(['restore', '--latest', '--to', 'postgres://u@h/db']), env).dest.database).toBe('db');
  });
});
