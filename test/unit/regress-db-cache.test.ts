// The cache of the regression-database cluster (test/support/regress-db.mjs): a saved data
// directory is used only while its files are those saved, under the key it was made for.
import { describe, it, expect } from 'vitest';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../support/tmp.js';
// @ts-expect-error plain JS test support
import { cachedDataDir, saveDataDir } from '../support/regress-db.mjs';

type Lookup = { data?: string; meta?: Record<string, unknown>; missing?: string };
const lookup = cachedDataDir as (root: string, key: string) => Lookup;
const save = saveDataDir as (root: string, key: string, data: string, meta?: Record<string, unknown>) => string;

function fakeDataDir(): string {
  const d = join(tempDir('pgbackup-regress-db-unit-'), 'data');
  mkdirSync(join(d, 'base', '1'), { recursive: true });
  writeFileSync(join(d, 'PG_VERSION'), '15\n');
  writeFileSync(join(d, 'base', '1', '1259'), Buffer.alloc(8192, 7));
  writeFileSync(join(d, 'postmaster.opts'), 'postgres -D ...\n');
  return d;
}

describe('the regression-database cache', () => {
  const root = tempDir('pgbackup-regress-cache-unit-');

  it('is missing until saved; once saved, it is found with its meta, without the server\'s transient files', () => {
    expect(lookup(root, 'k1').missing).toBe('no cache yet');
    save(root, 'k1', fakeDataDir(), { password: 'pw' });
    const c = lookup(root, 'k1');
    expect(c.missing).toBeUndefined();
    expect(c.meta).toMatchObject({ password: 'pw', key: 'k1' });
    expect(readFileSync(join(c.data!, 'base', '1', '1259')).equals(Buffer.alloc(8192, 7))).toBe(true);
    expect(existsSync(join(c.data!, 'postmaster.opts'))).toBe(false);
  });

  it('under another key it is stale: not used', () => {
    expect(lookup(root, 'k2').missing).toMatch(/stale: db-k1/);
  });

  it('a changed, added or removed file makes it damaged: removed, so that the caller makes it again', () => {
    const damage: Array<(data: string) => void> = [
      (d) => appendFileSync(join(d, 'base', '1', '1259'), 'x'),
      (d) => writeFileSync(join(d, 'base', '1', '1259'), Buffer.alloc(8192, 8)),
      (d) => writeFileSync(join(d, 'base', '1', '2619'), ''),
      (d) => rmSync(join(d, 'PG_VERSION')),
    ];
    for (const hurt of damage) {
      save(root, 'k1', fakeDataDir());
      hurt(lookup(root, 'k1').data!);
      expect(lookup(root, 'k1').missing).toMatch(/damaged cache/);
      expect(existsSync(join(root, 'db-k1'))).toBe(false);
    }
  });

  it('an unreadable meta.json makes it damaged too', () => {
    save(root, 'k1', fakeDataDir());
    writeFileSync(join(root, 'db-k1', 'meta.json'), '{');
    expect(lookup(root, 'k1').missing).toMatch(/damaged cache \(meta.json/);
  });

  it('saving under a new key removes the caches of other keys', () => {
    save(root, 'k1', fakeDataDir());
    save(root, 'k3', fakeDataDir());
    expect(existsSync(join(root, 'db-k1'))).toBe(false);
    expect(lookup(root, 'k3').data).toBeDefined();
  });
});
