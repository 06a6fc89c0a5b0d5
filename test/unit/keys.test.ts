import { describe, it, expect } from 'vitest';
import { backupKey, computeTier, parseKey, isoWeekStart, tierListPrefixes, encodeDbName, sniff, chainOf, normalisePrefix } from '../../src/model/keys.js';

const d = (s: string) => new Date(s);

describe('object keys', () => {
  it('lays out keys as the contract says, and parses them back', () => {
    const k = backupKey('prod/', 'opus', d('2025-11-08T19:28:37.456Z'), { gzip: true, age: true });
    expect(k).toBe('prod/opus/2025/11/08/opus_20251108T192837Z.sql.gz.age');
    const p = parseKey(k)!;
    expect(p).toMatchObject({ prefix: 'prod/', database: 'opus', seq: 1, chain: { gzip: true, age: true } });
    expect(p.time.toISOString()).toBe('2025-11-08T19:28:37.000Z');
    expect(backupKey('', 'a', d('2025-01-02T03:04:05Z'), { gzip: false, age: false }, 2)).toBe('a/2025/01/02/a_20250102T030405Z-2.sql');
    expect(parseKey('a/2025/01/02/a_20250102T030405Z-2.sql')!.seq).toBe(2);
  });
  it('keeps odd database names in one path segment and round-trips them', () => {
    for (const name of ['with space', 'quo"te', 'naïve/é', '50%', 'back\\slash', '..']) {
      const k = backupKey('', name, d('2025-01-02T03:04:05Z'), { gzip: true, age: true });
      expect(k.split('/').length).toBe(5);
      expect(parseKey(k)!.database).toBe(name);
    }
    expect(encodeDbName('a/b')).toBe('a%2Fb');
  });
  it('rejects keys that do not follow the layout', () => {
    expect(parseKey('opus/2025/11/08/other_20251108T192837Z.sql.gz.age')).toBeNull();
    expect(parseKey('opus/2025/11/09/opus_20251108T192837Z.sql.gz.age')).toBeNull();
    expect(parseKey('opus/2025/11/08/opus_20251108T192837Z.sql.gz.age.json')).toBeNull();
    expect(parseKey('random.txt')).toBeNull();
  });
  it('names chains by suffix and sniffs magic bytes', () => {
    expect(chainOf('x.sql')).toEqual({ gzip: false, age: false });
    expect(chainOf('x.sql.age')).toEqual({ gzip: false, age: true });
    expect(chainOf('x.dump')).toBeNull();
    expect(sniff(Buffer.from([0x1f, 0x8b, 8]))).toBe('gzip');
    expect(sniff(Buffer.from('age-encryption.org/v1\n-> X25519'))).toBe('age');
    expect(sniff(Buffer.from('--\n-- PostgreSQL'))).toBe('text');
    expect(normalisePrefix('/a/b')).toBe('a/b/');
    expect(normalisePrefix('')).toBe('');
  });
});

describe('retention tiers (UTC)', () => {
  it('first of a year is yearly, of a month monthly, of an ISO week weekly, else daily', () => {
    expect(computeTier(d('2025-03-05T01:00:00Z'), [])).toBe('yearly');
    expect(computeTier(d('2025-03-05T01:00:00Z'), [d('2025-01-10T00:00:00Z')])).toBe('monthly');
    // Wed 2025-03-05; a backup on Sat 2025-03-01 is the same month but the previous ISO week.
    expect(computeTier(d('2025-03-05T01:00:00Z'), [d('2025-03-01T00:00:00Z')])).toBe('weekly');
    // Mon 2025-03-03 is in the same ISO week as Wed 2025-03-05.
    expect(computeTier(d('2025-03-05T01:00:00Z'), [d('2025-03-03T00:00:00Z')])).toBe('daily');
    expect(computeTier(d('2025-03-05T23:00:00Z'), [d('2025-03-05T01:00:00Z')])).toBe('daily');
  });
  it('crosses year, month and ISO-week boundaries in UTC, with days missing', () => {
    // 2024-12-30 (Mon) is in ISO week 2025-W01; a backup then is last year's.
    expect(computeTier(d('2025-01-01T00:00:00Z'), [d('2024-12-30T10:00:00Z')])).toBe('yearly');
    expect(computeTier(d('2025-01-02T00:00:00Z'), [d('2024-12-30T10:00:00Z'), d('2025-01-01T00:00:00Z')])).toBe('daily');
    // Month change inside one ISO week: 2025-06-30 Mon, 2025-07-01 Tue.
    expect(computeTier(d('2025-07-01T00:00:00Z'), [d('2025-06-30T00:00:00Z')])).toBe('monthly');
    expect(computeTier(d('2025-07-02T00:00:00Z'), [d('2025-06-30T00:00:00Z'), d('2025-07-01T00:00:00Z')])).toBe('daily');
    // A gap of weeks: the next backup opens a new week.
    expect(computeTier(d('2025-07-30T00:00:00Z'), [d('2025-07-01T00:00:00Z')])).toBe('weekly');
    // UTC, not local time: 23:59:59Z on Sunday is still last week.
    expect(isoWeekStart(d('2025-03-09T23:59:59Z')).toISOString()).toBe('2025-03-03T00:00:00.000Z');
    expect(isoWeekStart(d('2025-03-10T00:00:00Z')).toISOString()).toBe('2025-03-10T00:00:00.000Z');
  });
  it('lists last year too when the ISO week began in it', () => {
    expect(tierListPrefixes('', 'db', d('2025-01-01T00:00:00Z'))).toEqual(['db/2025/', 'db/2024/']);
    expect(tierListPrefixes('p/', 'db', d('2025-06-01T00:00:00Z'))).toEqual(['p/db/2025/']);
  });
});

describe('tiers with kinds and forced tiers', () => {
  it('a period is taken only by a stored full backup whose tier covers it', () => {
    const now = d('2025-03-05T01:00:00Z');
    // A forced daily backup earlier in the year takes no slot.
    expect(computeTier(now, [{ time: d('2025-01-10T00:00:00Z'), tier: 'daily' }])).toBe('yearly');
    // A forced monthly one covers its month and week, not the year.
    expect(computeTier(now, [{ time: d('2025-03-04T00:00:00Z'), tier: 'monthly' }])).toBe('yearly');
    expect(computeTier(now, [{ time: d('2025-01-04T00:00:00Z'), tier: 'yearly' }, { time: d('2025-03-04T00:00:00Z'), tier: 'weekly' }])).toBe('monthly');
    expect(computeTier(now, [{ time: d('2025-01-04T00:00:00Z'), tier: 'yearly' }, { time: d('2025-03-01T00:00:00Z'), tier: 'monthly' }])).toBe('weekly');
  });
});
