import { describe, it, expect } from 'vitest';
import { planPrune, DAY_MS, type PruneBackup } from '../../src/model/retention.js';
import { DEFAULT_RETENTION } from '../../src/model/lifecycle.js';
import { sidecarOf, verifiedKey, manifestKey } from '../../src/model/keys.js';
import { folderPeriodEnd } from '../../src/ops/prune.js';

const now = new Date('2026-06-15T12:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms);
const b = (key: string, age: number, m: PruneBackup['manifest'], o: Partial<PruneBackup> = {}): PruneBackup => ({
  key, database: 'db', time: ago(age), mtime: ago(age), size: 1, complete: m !== undefined, manifest: m, sidecars: [], ...o,
});

describe('planPrune', () => {
  it('deletes each tier just past its days and keeps it just before', () => {
    const items: PruneBackup[] = [b('newest', 1000, { tier: 'daily', kind: 'full' })];
    for (const [tier, days] of Object.entries(DEFAULT_RETENTION)) {
      items.push(b(`${tier}-in`, days * DAY_MS - 1000, { tier: tier as 'daily', kind: 'full' }));
      items.push(b(`${tier}-out`, days * DAY_MS + 1000, { tier: tier as 'daily', kind: 'full' }));
    }
    const plan = planPrune(items, [], DEFAULT_RETENTION, now);
    const del = plan.filter((d) => d.action === 'delete').map((d) => d.key).sort();
    expect(del).toEqual(['daily-out', 'monthly-out', 'weekly-out', 'yearly-out']);
  });

  it('never deletes the newest complete full backup; safety and incomplete ones do not count', () => {
    const plan = planPrune(
      [b('full-old', 900 * DAY_MS, { tier: 'daily', kind: 'full' }), b('full', 800 * DAY_MS, { tier: 'daily', kind: 'full' }), b('safety', 700 * DAY_MS, { tier: 'daily', kind: 'safety' }), b('inc', 600 * DAY_MS, undefined)],
      [],
      DEFAULT_RETENTION,
      now,
    );
    expect(Object.fromEntries(plan.map((d) => [d.key, d.action]))).toEqual({ 'full-old': 'delete', full: 'keep', safety: 'delete', inc: 'delete' });
  });

  it('keeps an incomplete dump or partial file written to within a day, whatever its key says', () => {
    const plan = planPrune([b('inc', 5 * DAY_MS, undefined, { mtime: ago(DAY_MS - 60_000) })], [{ key: 'p', what: 'partial', mtime: ago(DAY_MS - 60_000), size: 1 }], DEFAULT_RETENTION, now);
    expect(plan.map((d) => d.action)).toEqual(['keep', 'keep']);
  });

  it('knows sidecars and folder periods', () => {
    const k = 'db/2026/01/02/db_20260102T030405Z.sql.gz.age';
    expect(sidecarOf(manifestKey(k))).toEqual({ dump: k, what: 'manifest' });
    expect(sidecarOf(verifiedKey(k))).toEqual({ dump: k, what: 'verified' });
    expect(sidecarOf('db/notes.json')).toBeNull();
    expect(folderPeriodEnd('db/2026/01/31')?.toISOString()).toBe('2026-02-01T00:00:00.000Z');
    expect(folderPeriodEnd('db/2026/12')?.toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(folderPeriodEnd('db/2026')?.toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(folderPeriodEnd('db')).toBeNull();
  });
});
