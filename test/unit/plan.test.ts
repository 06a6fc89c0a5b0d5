import { describe, it, expect } from 'vitest';
import { planParts, MIB, MAX_PART, MAX_OBJECT, S3_MAX_PARTS } from '../../src/model/plan.js';

describe('part size plan', () => {
  it('uses the configured part size for small databases', () => {
    expect(planParts(100 * MIB, 16 * MIB).partSize).toBe(16 * MIB);
    expect(planParts(0, undefined).partSize).toBe(8 * MIB);
  });
  it('grows the part size so that 10,000 parts hold twice the database with room to spare', () => {
    for (const gib of [100, 500, 1024, 2048]) {
      const db = gib * 1024 * MIB;
      const p = planParts(db, 16 * MIB);
      expect(p.capacity).toBeGreaterThanOrEqual(Math.min(MAX_OBJECT, 2 * db));
      expect(p.partSize % MIB).toBe(0);
      expect(Math.ceil((2 * db + 1024 * MIB) / p.partSize)).toBeLessThanOrEqual(S3_MAX_PARTS * 0.9);
    }
  });
  it('fits a 5 TiB object under the limit and never exceeds the 5 GiB part maximum', () => {
    const p = planParts(10 * 1024 * 1024 * MIB, undefined);
    expect(p.partSize).toBeLessThanOrEqual(MAX_PART);
    expect(p.capacity).toBe(MAX_OBJECT);
    expect(Math.ceil(MAX_OBJECT / p.partSize)).toBeLessThanOrEqual(S3_MAX_PARTS);
  });
  it('respects a shrunken part limit', () => {
    const p = planParts(0, 5 * MIB, 3);
    expect(p.capacity).toBe(p.partSize * 3);
  });
});
