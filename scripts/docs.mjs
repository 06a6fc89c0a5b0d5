// `npm run docs`: rewrite the option reference in docs/cli.md from the parser's option
// definitions (dist/clidocs.js; run `npm run build` first). test/unit/clidocs.test.ts fails when
// the committed block differs from what this writes.
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const { markdownOptions, DOCS_BEGIN, DOCS_END } = await import(new URL('dist/clidocs.js', root).href);
const file = new URL('docs/cli.md', root);
const text = readFileSync(file, 'utf8');
const a = text.indexOf(DOCS_BEGIN);
const b = text.indexOf(DOCS_END);
if (a < 0 || b < a) throw new Error('docs/cli.md: generated-block markers not found');
writeFileSync(file, text.slice(0, a + DOCS_BEGIN.length) + '\n' + markdownOptions() + '\n' + text.slice(b));
