// A setup file of both vitest projects (it runs at the start of every test file): the file's
// temporary folders (test/support/tmp.ts) are removed when the file is done. Registered first,
// this afterAll runs after the file's own (hooks run in reverse order), so servers and clusters
// a file started are stopped before their folders go.
import { afterAll } from 'vitest';
import { removeTempDirs } from './tmp.js';

afterAll(removeTempDirs);
