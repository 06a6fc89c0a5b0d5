// ESLint (flat config): typescript-eslint's type-aware recommended rules over src/ and test/
// (types from test/tsconfig.json, which covers both), plain recommended rules for the .mjs helpers.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // bench/ keeps copies of other programs' code as they were measured.
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // One program for src/ and test/ (test/tsconfig.json includes both): faster than one per tsconfig.
      parserOptions: { project: ['./test/tsconfig.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Rows from node-postgres and the results of JSON.parse are `any` where they enter our code;
      // the tests read the CLI's JSON output this way on purpose. Typing every query's row is
      // follow-up work; until then these rules would flag each column read, not real mistakes.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // An empty catch says "ignore this failure" (a best-effort clean-up, a probe); it is the idiom.
      'no-empty': ['error', { allowEmptyCatch: true }],
      // `_`-prefixed names are deliberate: unused parameters kept for a signature, values drained.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
    },
  },
  {
    // Test helpers, benchmarks and scripts in plain JavaScript: no types to check against.
    files: ['**/*.mjs', '**/*.js', 'bin/**'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
);
