// npm's "prepare" (runs after `npm install` / `npm ci` in a checkout, and before `npm pack`):
// build dist/ when TypeScript is installed. A production install of a checkout
// (`npm ci --omit=dev`) has no TypeScript: it keeps the dist/ that `npm run build` made earlier,
// or says how to get one. A package made by `npm pack` already contains dist/.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url);
let hasTsc = true;
try {
  createRequire(import.meta.url).resolve('typescript/package.json');
} catch {
  hasTsc = false;
}
if (hasTsc) {
  const npm = process.env.npm_execpath;
  const r = npm
    ? spawnSync(process.execPath, [npm, 'run', 'build'], { stdio: 'inherit', cwd: root })
    : spawnSync('npm', ['run', 'build'], { stdio: 'inherit', cwd: root, shell: process.platform === 'win32' });
  process.exit(r.status ?? 1);
}
if (!existsSync(new URL('dist/bundle/main.js', root))) {
  process.stderr.write(
    'pgbackup: TypeScript is not installed (a production install), so dist/ was not built.\n' +
      'Build it first with the dev dependencies: npm ci && npm run build && npm prune --omit=dev\n' +
      '(or install the packed tool: npm install -g "$(npm pack --silent)").\n',
  );
}
