import { describe, it, expect } from 'vitest';
import { run } from './helpers.js';

describe('bucket', () => {
  it('lifecycle prints the rules for the current settings', async () => {
    const r = await run(['bucket', 'lifecycle', '--to', 's3://backups/prod/']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.Rules.map((x: { ID: string }) => x.ID)).toContain('pgbackup-prod/yearly');
    expect(j.Rules[0].Filter.And.Prefix).toBe('prod/');
  });
  it('lifecycle --apply against a server without the lifecycle API fails with a clear message', async () => {
    const r = await run(['bucket', 'lifecycle', '--apply', '--to', 's3://backups/prod/']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/lifecycle rules of s3:\/\/backups.*does not implement this API/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
  it('check says which checks the server cannot answer instead of failing', async () => {
    const r = await run(['bucket', 'check', '--to', 's3://backups/prod/']);
    expect(r.stdout).toMatch(/lifecycle rules: cannot check/);
    expect([0, 7]).toContain(r.code);
    const missing = await run(['bucket', 'check', '--to', 's3://no-such-bucket-x/']);
    expect(missing.code).toBe(4);
  });
  it('needs an s3:// target', async () => {
    const r = await run(['bucket', 'check', '--to', '/tmp/x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('s3://');
  });
});
