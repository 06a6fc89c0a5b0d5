import { describe, it, expect } from 'vitest';
import { filterOptions, manifestKind } from '../../src/model/manifest.js';

const base = { pgDump: { version: '15', options: ['--format=plain', '--clean', '--if-exists', '--no-password'] } };

describe('backup kinds', () => {
  it('are read from the manifest, or inferred for manifests written before kinds existed', () => {
    expect(manifestKind({ ...base, kind: 'safety' })).toBe('safety');
    expect(manifestKind(base)).toBe('full');
    expect(manifestKind({ ...base, reason: 'safety backup before restoring x' })).toBe('safety');
    expect(manifestKind({ pgDump: { version: '15', options: [...base.pgDump.options, '--table=a'] } })).toBe('partial');
    expect(manifestKind({ pgDump: { version: '15', options: ['--exclude-table-data=logs'] } })).toBe('partial');
    expect(manifestKind({ pgDump: { version: '15', options: ['--column-inserts', '--no-owner'] } })).toBe('full');
  });
  it('filters are the pg_dump options that select less than the whole database', () => {
    expect(filterOptions(['--format=plain', '--schema=s', '--no-password', '-t', 'x', '--exclude-schema=tmp'])).toEqual(['--schema=s', '-t', '--exclude-schema=tmp']);
  });
});
