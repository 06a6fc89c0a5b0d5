import { defineConfig } from 'vitest/config';

// Two projects: `unit` (test/unit) needs no server and starts none, so `npm run test:unit`
// runs in seconds; `integration` (test/integration) gets one PostgreSQL cluster and one S3
// server from the global setup, shared by every file.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    // Removes each file's temporary folders (test/support/tmp.ts) when the file is done.
    setupFiles: ['test/support/cleanup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
          // The unit files share their workers' module cache instead of each starting from a
          // fresh one: module loading (zod, pino, the AWS SDK, typage, the vite transform of
          // src/) was half the run. Safe because unit files leave no global state behind: the
          // ones that set process.env restore it, and none mocks a module or stubs a global
          // (test/unit/suite.test.ts holds that).
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.mjs'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
