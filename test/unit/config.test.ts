import { describe, it, expect } from 'vitest';
import { parseCli } from '../../src/cli/args.js';
import { backupConfig, restoreConfig, commonConfig, parseTarget, sizeSchema, durationSchema, DEFAULT_PROGRESS_INTERVAL_MS } from '../../src/config/config.js';
import { connFromUrl, childEnv } from '../../src/pg/conn.js';
import { UsageError } from '../../src/support/errors.js';

const R = 'age1zr32gyu2h09l3f397nrchrfhl3v6fk4d9xkxw3t80f7nap02fuxqg8gmnt';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e.problems;
    throw e;
  }
  return [];
}

describe('configuration', () => {
  it('a flag wins over its variable', () => {
    const c = backupConfig(parseCli(['backup', '--to', 's3://b-1/p', '--recipient', R]), { PGBACKUP_TARGET: '/x', DATABASE_URL: 'postgres://u@h/db' });
    expect(c.target).toMatchObject({ kind: 's3', bucket: 'b-1', prefix: 'p/' });
    expect(c.source.database).toBe('db');
  });
  it('defaults to ./backups, level 6, tier auto', () => {
    const c = backupConfig(parseCli(['backup', '--no-encryption']), {});
    expect(c.target).toEqual({ kind: 'folder', path: './backups' });
    expect(c.compressLevel).toBe(6);
    expect(c.tier).toBe('auto');
  });
  it('names every bad field at once and echoes no password', () => {
    const p = problems(() => backupConfig(parseCli(['backup', '--database', 'mysql://u:topsecret@h/db', '--recipient', 'age1bad', '--to', 's3://', '--compress-level', 'x']), {}));
    expect(p.join('\n')).not.toContain('topsecret');
    expect(p.some((x) => x.startsWith('--database'))).toBe(true);
    expect(p.some((x) => x.startsWith('--recipient #1'))).toBe(true);
    expect(p.some((x) => x.startsWith('--to'))).toBe(true);
    expect(p.some((x) => x.startsWith('--compress-level'))).toBe(true);
    expect(p.some((x) => x.startsWith('encryption'))).toBe(false);
  });
  it('parses sizes and durations', () => {
    expect(sizeSchema.parse('16MiB')).toBe(16 * 1024 * 1024);
    expect(sizeSchema.parse('1G')).toBe(1024 ** 3);
    expect(sizeSchema.safeParse('lots').success).toBe(false);
    expect(durationSchema.parse('1h30m')).toBe(5_400_000);
    expect(durationSchema.parse('1500ms')).toBe(1500);
    expect(durationSchema.safeParse('10').success).toBe(false);
    expect(durationSchema.safeParse('0s').success).toBe(false);
  });
  it('rejects unknown flags and extra arguments', () => {
    expect(problems(() => parseCli(['backup', '--nope', 'extra']))).toEqual(['unknown option --nope for "backup"', 'unexpected argument(s): "extra"']);
    expect(problems(() => parseCli(['frob']))[0]).toContain('unknown command');
  });
  it('targets: s3 URLs and folders', () => {
    expect(parseTarget('s3://my.bucket', {}, 'f')).toMatchObject({ bucket: 'my.bucket', prefix: '' });
    expect(() => parseTarget('s3://Bad_Bucket/x', {}, 'f')).toThrow(/not a valid S3 bucket/);
    expect(() => parseTarget('gs://b/x', {}, 'f')).toThrow(/unsupported target/);
    expect(() => parseTarget('s3://b-1/x', { PGBACKUP_S3_SSE: 'rot13' }, 'f')).toThrow(/PGBACKUP_S3_SSE/);
    expect(parseTarget('s3://b-1/x', { PGBACKUP_S3_TIMEOUT: '30s', AWS_MAX_ATTEMPTS: '3' }, 'f')).toMatchObject({ idleTimeoutMs: 30_000, maxAttempts: 3 });
    expect(parseTarget('s3://b-1/x', {}, 'f')).toMatchObject({ idleTimeoutMs: undefined, maxAttempts: undefined });
    expect(() => parseTarget('s3://b-1/x', { PGBACKUP_S3_TIMEOUT: '30' }, 'f')).toThrow(/PGBACKUP_S3_TIMEOUT: must be a duration .* not "30"/);
    expect(() => parseTarget('s3://b-1/x', { PGBACKUP_S3_TIMEOUT: '10ms' }, 'f')).toThrow(/PGBACKUP_S3_TIMEOUT/);
    expect(() => parseTarget('s3://b-1/x', { AWS_MAX_ATTEMPTS: 'five' }, 'f')).toThrow(/AWS_MAX_ATTEMPTS: must be a whole number/);
    expect(() => parseTarget('s3://b-1/x', { AWS_MAX_ATTEMPTS: '0' }, 'f')).toThrow(/AWS_MAX_ATTEMPTS/);
  });
  it('restore needs one way to choose a backup and a target database', () => {
    const p = problems(() => restoreConfig(parseCli(['restore', 'k', '--latest']), {}));
    expect(p.join()).toContain('only one of');
    expect(problems(() => restoreConfig(parseCli(['restore']), { DATABASE_URL: 'postgres://h/db' })).join()).toContain('give a KEY');
  });
});

describe('connections', () => {
  it('puts the password in the environment, never in arguments', () => {
    const ci = connFromUrl('postgresql://us%40er:p%40ss%20w@db.example:6543/my%20db?sslmode=require&application_name=x');
    expect(ci).toMatchObject({ host: 'db.example', port: 6543, user: 'us@er', database: 'my db' });
    expect(String(ci.password)).toBe('[redacted]');
    expect(JSON.stringify(ci)).not.toContain('p@ss');
    const env = childEnv(ci, { PATH: '/bin', PGPASSWORD: 'old', AWS_SECRET_ACCESS_KEY: 'aws' });
    expect(env).toMatchObject({ PGHOST: 'db.example', PGPORT: '6543', PGUSER: 'us@er', PGDATABASE: 'my db', PGPASSWORD: 'p@ss w', PGSSLMODE: 'require', PGAPPNAME: 'x', PATH: '/bin' });
    expect(env.AWS_SECRET_ACCESS_KEY).toBeUndefined();
  });
  it('rejects unknown parameters and bad ports without echoing the URL', () => {
    expect(() => connFromUrl('postgres://u:pw@h/db?frob=1')).toThrow(/frob/);
    expect(() => connFromUrl('postgres://u:pw@h:99999/db')).toThrow();
    let thrown: unknown;
    try {
      connFromUrl('postgres://u:s3cret@h:99999/db');
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect(String((thrown as Error).message)).not.toContain('s3cret');
  });
});

describe('configuration schemas: every bad field named, by the name the user wrote', () => {
  it('names a variable as the variable and a flag as the flag', () => {
    const p = problems(() => backupConfig(parseCli(['backup', '--no-encryption']), { PGBACKUP_S3_PART_SIZE: 'huge', PGBACKUP_S3_QUEUE_SIZE: '0', PGBACKUP_SCRYPT_WORK_FACTOR: '40' }));
    expect(p).toEqual([
      'PGBACKUP_S3_PART_SIZE: not a size: "huge" (e.g. 16MiB, 64M, 1GiB)',
      'PGBACKUP_S3_QUEUE_SIZE: must be a whole number from 1 to 64, not "0"',
      'PGBACKUP_SCRYPT_WORK_FACTOR: must be a whole number from 10 to 22, not "40"',
    ]);
    expect(problems(() => backupConfig(parseCli(['backup', '--no-encryption', '--part-size', '1MiB']), {}))).toEqual(['--part-size: S3 parts must be from 5MiB to 5GiB']);
  });

  it('a flag wins over its variable: the variable is not even read', () => {
    const c = backupConfig(parseCli(['backup', '--no-encryption', '--part-size', '16MiB', '--queue-size', '4']), { PGBACKUP_S3_PART_SIZE: 'huge', PGBACKUP_S3_QUEUE_SIZE: 'x' });
    expect(c.partSize).toBe(16 * 1024 * 1024);
    expect(c.queueSize).toBe(4);
    const r = restoreConfig(parseCli(['restore', 'k', '--to', 'postgres://h/db', '--from', '/b']), { PGBACKUP_TARGET: 'gs://nope' });
    expect(r.target).toEqual({ kind: 'folder', path: '/b' });
  });

  it('field problems and cross-field rules are reported together', () => {
    const p = problems(() =>
      restoreConfig(parseCli(['restore', 'k', '--latest', '--from', 'gs://x/', '--to', 'postgres://h:99999/db', '--jobs', '0', '--lock-timeout', 'soon', '--db-locale', 'C']), {}),
    );
    expect(p.some((x) => x.startsWith('--from: unsupported target'))).toBe(true);
    expect(p.some((x) => x.startsWith('--to'))).toBe(true);
    expect(p).toContain('--jobs: a whole number from 1 to 64');
    expect(p).toContain('--lock-timeout: not a duration: "soon" (e.g. 90s, 10m, 2h, 1h30m)');
    expect(p).toContain('which backup: give only one of KEY, --latest, --at');
    expect(p).toContain('--db-locale: only with --create (it chooses how the database is created)');
  });

  it('encryption rules: one way to encrypt, or --no-encryption, never both', () => {
    expect(problems(() => backupConfig(parseCli(['backup']), {}))[0]).toMatch(/^encryption: no age recipient or passphrase given/);
    expect(problems(() => backupConfig(parseCli(['backup', '--no-encryption', '--recipient', R]), {}))).toEqual(['--no-encryption: conflicts with --recipient / --recipients-file / --passphrase-file']);
    expect(problems(() => backupConfig(parseCli(['backup', '--passphrase-file', 'f']), { PGBACKUP_RECIPIENTS: R }))).toEqual(['--passphrase-file: age cannot encrypt to a passphrase and to recipients at once; give one or the other']);
    expect(problems(() => backupConfig(parseCli(['backup', '--no-encryption']), { PGBACKUP_RECIPIENTS: 'age1nope' }))[0]).toMatch(/^PGBACKUP_RECIPIENTS #1: /);
  });

  it('the outputs are frozen and typed by the schemas', () => {
    const c = backupConfig(parseCli(['backup', '--no-encryption', '--schema', 's', '--no-owner', '--tier', 'weekly', '--stall-timeout', '90s']), {});
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.dumpOptions).toEqual(['--schema=s', '--no-owner']);
    expect(c.tier).toBe('weekly');
    expect(c.stallMs).toBe(90_000);
    expect(c.targetIsDefault).toBe(true);
    expect(problems(() => backupConfig(parseCli(['backup', '--no-encryption', '--table', '']), {}))).toEqual(['--table: empty pattern']);
  });
});

describe('common options: the progress interval', () => {
  it('--progress-interval wins over PGBACKUP_PROGRESS_INTERVAL, which wins over the default', () => {
    expect(commonConfig(parseCli(['list']), {}).progressIntervalMs).toBe(DEFAULT_PROGRESS_INTERVAL_MS);
    expect(commonConfig(parseCli(['list']), { PGBACKUP_PROGRESS_INTERVAL: '30s' }).progressIntervalMs).toBe(30_000);
    expect(commonConfig(parseCli(['backup', '--progress-interval', '1m']), { PGBACKUP_PROGRESS_INTERVAL: 'often' }).progressIntervalMs).toBe(60_000);
  });
  it('a bad or too short interval is named', () => {
    expect(problems(() => commonConfig(parseCli(['list']), { PGBACKUP_PROGRESS_INTERVAL: 'often' }))).toEqual(['PGBACKUP_PROGRESS_INTERVAL: not a duration: "often" (e.g. 90s, 10m, 2h, 1h30m)']);
    expect(problems(() => commonConfig(parseCli(['verify', '--progress-interval', '10ms']), {}))).toEqual(['--progress-interval: at least 100ms']);
  });
});
