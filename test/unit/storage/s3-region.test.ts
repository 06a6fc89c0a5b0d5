// Which region the S3 client signs for when the target sets none: the SDK's own chain (a
// region set only in the AWS_PROFILE profile counts), else, for a custom endpoint, a fixed
// signing region, else a clear configuration error. The SDK reads process.env itself, so the
// test sets and restores the variables around each case.
import { describe, it, expect, afterEach } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMPATIBLE_DEFAULT_REGION, makeS3Client } from '../../../src/storage/s3.js';
import { UsageError } from '../../../src/support/errors.js';
import { tempDir } from '../../support/tmp.js';

const VARS = ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_EC2_METADATA_DISABLED'];
const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));

/** A clean AWS environment: no region variables, config files of our own (maybe empty). */
function awsEnv(config = ''): void {
  for (const v of VARS) delete process.env[v];
  const dir = tempDir('pgbackup-aws-');
  writeFileSync(join(dir, 'config'), config);
  writeFileSync(join(dir, 'credentials'), '');
  process.env.AWS_CONFIG_FILE = join(dir, 'config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials');
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
}

afterEach(() => {
  for (const v of VARS) {
    if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
  }
});

describe('S3 client region', () => {
  it('a region set only in the AWS_PROFILE profile is used', async () => {
    awsEnv('[default]\nregion = us-west-2\n\n[profile backups]\nregion = eu-west-3\n');
    process.env.AWS_PROFILE = 'backups';
    const c = await makeS3Client({ bucket: 'b-1', prefix: '' });
    expect(await c.config.region()).toBe('eu-west-3');
  });

  it('AWS_REGION wins over the profile (the SDK chain), and the target\'s own region over both', async () => {
    awsEnv('[profile backups]\nregion = eu-west-3\n');
    process.env.AWS_PROFILE = 'backups';
    process.env.AWS_REGION = 'ap-south-1';
    expect(await (await makeS3Client({ bucket: 'b-1', prefix: '' })).config.region()).toBe('ap-south-1');
    expect(await (await makeS3Client({ bucket: 'b-1', prefix: '', region: 'sa-east-1' })).config.region()).toBe('sa-east-1');
  });

  it('no region anywhere, on AWS: a configuration error that says where to set one', async () => {
    awsEnv();
    const e = await makeS3Client({ bucket: 'b-1', prefix: 'p/' }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).message).toMatch(/no AWS region: set AWS_REGION .*AWS_PROFILE profile/);
  });

  it('no region anywhere, on an S3-compatible endpoint: the fixed signing region', async () => {
    awsEnv();
    const c = await makeS3Client({ bucket: 'b-1', prefix: '', endpoint: 'http://127.0.0.1:9' });
    expect(await c.config.region()).toBe(COMPATIBLE_DEFAULT_REGION);
    awsEnv('[default]\nregion = eu-central-1\n');
    const d = await makeS3Client({ bucket: 'b-1', prefix: '', endpoint: 'http://127.0.0.1:9' });
    expect(await d.config.region()).toBe('eu-central-1');
  });
});
