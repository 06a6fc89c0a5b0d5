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

describe('typos', () => {
  it('an unknown option or command names the one it most likely meant', () => {
    expect(problems(['restore', '--latest', '--form', 'x', '--to', 'postgres://h/db'])).toEqual(['unknown option --form for "restore" (did you mean --from?)']);
    expect(problems(['restore', '--latest', '--to-database', 'postgres://h/db'])).toEqual(['unknown option --to-database for "restore" (did you mean --to?)']);
    expect(problems(['backup', '--recipent', 'age1x'])[0]).toBe('unknown option --recipent for "backup" (did you mean --recipient?)');
    expect(problems(['backup', '--compresion-level', '1'])[0]).toBe('unknown option --compresion-level for "backup" (did you mean --compress-level?)');
    expect(() => parseCli(['restor'])).toThrow('unknown command "restor" (did you mean "restore"?)');
    expect(() => parseCli(['verfiy'])).toThrow('did you mean "verify"?');
  });

  it('nothing close: no guess', () => {
    expect(problems(['backup', '--bogus'])).toEqual(['unknown option --bogus for "backup"']);
    expect(() => parseCli(['frobnicate'])).toThrow(/^unknown command "frobnicate" \(expected one of/);
  });
});
