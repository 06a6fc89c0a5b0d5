// The command-line tool as it runs: dist/bundle/, one ES module file for the start (dist/main.js
// and everything it imports, dependencies included) and a chunk for each part loaded on demand
// (a command, the AWS SDK). A start then reads a handful of files instead of resolving and
// compiling several hundred modules one by one: about a third less CPU per start, which every
// cron run and every test pays. tsc has already checked and compiled src/ into dist/; this bundles
// that output. bin/pgbackup runs dist/bundle/main.js.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const { engines } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
const node = /\d+/.exec(engines.node)[0];

await build({
  absWorkingDir: new URL('.', root).pathname,
  entryPoints: ['dist/main.js'],
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: `node${node}`,
  // CommonJS dependencies call require(): give the ES module output one.
  banner: { js: "import { createRequire as __pgbackupRequire } from 'node:module'; const require = __pgbackupRequire(import.meta.url);" },
  // pg's optional native binding is not used; pino-pretty is loaded by path (support/log.ts).
  external: ['pg-native'],
  logLevel: 'warning',
  legalComments: 'none',
});
