// Remove a build output folder before a build, so that files of moved or deleted sources never ship.
import { rmSync } from 'node:fs';
for (const dir of process.argv.slice(2)) rmSync(new URL(`../${dir}`, import.meta.url), { recursive: true, force: true });
