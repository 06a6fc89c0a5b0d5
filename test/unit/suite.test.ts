// Rules the test suite keeps for itself, held like the architecture in layers.test.ts:
// - every temporary folder is made through test/support/tmp.ts, which removes it when its test
//   file is done (runs used to leave hundreds of folders behind in the temporary folder);
// - no unit file mocks a module, stubs a global or spies on an export: the unit project shares
//   its workers' module cache between files (isolate is off in vitest.config.ts), so such a
//   change would leak into the files that run after it.
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const SELF = relative(ROOT, __filename);

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|mjs|js)$/.test(e.name))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .sort();
}

const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');

describe('the test suite', () => {
  it('makes temporary folders only through test/support/tmp.ts', () => {
    // The servers' helpers remove their own folders when stopped, the benchmark in its stop().
    // regress-db.mjs keeps the regression suite's libraries at a fixed path on purpose (its cache).
    const own = ['test/support/tmp.ts', 'test/support/pg.mjs', 'test/support/s3.mjs', 'test/support/rgw.mjs', 'test/support/regress-db.mjs', 'bench/run.mjs'];
    const all = [...files('test'), ...files('bench')];
    expect(all).toContain('test/integration/helpers.ts');
    const offenders = all.filter((f) => f !== SELF && !own.includes(f) && /\b(mkdtemp(Sync)?|tmpdir)\s*\(/.test(read(f)));
    expect(offenders).toEqual([]);
    for (const f of own.filter((x) => x !== 'test/support/tmp.ts')) expect(read(f), f).toMatch(/rmSync\(/);
  });

  it('unit files mock no module, stub no global and spy on no export', () => {
    const unit = files('test/unit');
    expect(unit.length).toBeGreaterThan(20);
    const offenders = unit.filter((f) => f !== SELF && /\bvi\.(mock|doMock|hoisted|stubGlobal|stubEnv|spyOn)\b/.test(read(f)));
    expect(offenders).toEqual([]);
  });
});
