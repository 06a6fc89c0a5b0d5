// Part of `npm run build`: write dist/pgbackup.1 from the parser's option definitions
// (src/clidocs.ts, compiled), so the man page lists what the parser accepts.
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const { manPage } = await import(new URL('dist/clidocs.js', root).href);
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
writeFileSync(new URL('dist/pgbackup.1', root), manPage(version));
