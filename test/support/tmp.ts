// Temporary folders for tests. Each one is removed, with everything in it, when the test file
// that made it is done: test/support/cleanup.ts (a setup file of both vitest projects) calls
// removeTempDirs() in an afterAll of every file. So a folder can be made anywhere (at the top
// of a file, in a hook, in a test, in a helper) and none is left behind in the system's
// temporary folder, run after run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();
let keep = false;

/** A new, empty folder in the system's temporary folder, named `prefix` and random letters. */
export function tempDir(prefix = 'pgbackup-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Leave this file's folders in place, to look at after a failure (PGBACKUP_KEEP_TMP=1 does it for every file). */
export function keepTempDirs(): void {
  keep = true;
}

/** Remove every folder tempDir() made (the setup file's afterAll). */
export function removeTempDirs(): void {
  const dirs = [...made];
  made.clear();
  if (keep || process.env.PGBACKUP_KEEP_TMP) {
    keep = false;
    if (dirs.length) console.log(`kept the temporary folders:\n  ${dirs.join('\n  ')}`);
    return;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
