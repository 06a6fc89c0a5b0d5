import { describe, it, expect } from 'vitest';
import { parseCli } from '../../../src/cli/args.js';
import { UsageError } from '../../../src/support/errors.js';

function problems(argv: string[]): string[] {
  try {
    parseCli(argv);
  } catch (e) {
    if (e instanceof UsageError) return e.problems;
    throw e;
  }
  throw new Error(`parseCli(${argv.join(' ')}) did not fail`);
}

describe('parseCli', () => {
  it('an option where a value was expected is a missing value, not the value', () => {
    expect(problems(['restore', '--latest', '--to', '--clean'])).toEqual(['--to needs a value']);
    expect(problems(['backup', '--to', '--no-encryption', '--part-size'])).toEqual(['--to needs a value', '--part-size needs a value']);
  });

  it('a value that starts with -- can still be given inline, and - alone is a value', () => {
    expect(parseCli(['list', '--from=--odd-folder']).values.from).toBe('--odd-folder');
    expect(parseCli(['fetch', 'k', '-o', '-']).values.output).toBe('-');
  });

  it('names every bad option at once', () => {
    expect(problems(['backup', '--bogus', '--globals=yes', 'extra'])).toEqual(['unknown option --bogus for "backup"', '--globals takes no value', 'unexpected argument(s): "extra"']);
  });
});
