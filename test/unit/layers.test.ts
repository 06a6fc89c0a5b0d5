// The architecture as a test: imports run one way (DESIGN.md "Layout"), commands never import
// each other. Every module under src/ is read and each relative import checked against the
// rank of its folder; a module may import its own folder or a lower rank, never a higher one.
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const SRC = join(__dirname, '../../src');

// Higher imports lower. Folders of one rank may import each other (a stage may use another
// stage's types), except where a rule below says otherwise.
const RANK: Record<string, number> = {
  main: 7,
  commands: 6,
  ops: 5,
  config: 4,
  pipeline: 3,
  storage: 3,
  crypto: 3,
  pg: 3,
  model: 2,
  cli: 1,
  support: 0,
};

function layerOf(file: string): string {
  const rel = relative(SRC, file);
  if (rel.includes('/')) return rel.split('/')[0]!;
  return rel === 'clidocs.ts' ? 'cli' : rel.replace(/\.ts$/, '');
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of a module: static, type-only and dynamic ones, as src paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm)) {
    out.push(normalize(join(dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
  }
  return out;
}

const FILES = sources(SRC);

describe('module layers', () => {
  it('finds the layout', () => {
    for (const f of FILES) expect(RANK[layerOf(f)], `${relative(SRC, f)} is in no known layer`).toBeDefined();
    expect(FILES.some((f) => layerOf(f) === 'commands')).toBe(true);
  });

  it('no command module imports another command module', () => {
    const bad: string[] = [];
    for (const f of FILES.filter((f) => layerOf(f) === 'commands')) {
      for (const t of importsOf(f)) if (layerOf(t) === 'commands') bad.push(`${relative(SRC, f)} imports ${relative(SRC, t)}`);
    }
    expect(bad).toEqual([]);
  });

  it('imports run one way: commands -> ops -> config -> pipeline/storage/crypto/pg -> model -> cli -> support', () => {
    const bad: string[] = [];
    for (const f of FILES) {
      const from = layerOf(f);
      for (const t of importsOf(f)) {
        const to = layerOf(t);
        if (from !== to && RANK[to]! >= RANK[from]! && !(RANK[to] === RANK[from] && RANK[from] === 3)) {
          bad.push(`${relative(SRC, f)} (${from}) imports ${relative(SRC, t)} (${to})`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('the checker sees imports of every form', () => {
    const probe = join(SRC, 'commands/probe.ts');
    const text = `import a from './x.js';\nimport type { B } from '../ops/y.js';\nconst c = await import('./z.js');\nimport './side.js';\n`;
    const seen: string[] = [];
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm)) seen.push(relative(SRC, normalize(join(dirname(probe), m[1]!))));
    expect(seen).toEqual(['commands/x.js', 'ops/y.js', 'commands/z.js', 'commands/side.js']);
  });
});
