// `bucket check` and `bucket lifecycle --apply` against a small HTTP server that answers the
// bucket-settings calls s3rver does not implement (versioning, encryption, public access
// block, policy, object lock, lifecycle), driven through the real SDK by the real CLI.
import { describe, it, expect, afterAll } from 'vitest';
import http from 'node:http';
import { run, baseEnv } from './helpers.js';
// @ts-expect-error plain JS test support
import { freePort } from '../support/pg.mjs';

const FOREIGN = '<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ID>logs-expiry</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule></LifecycleConfiguration>';

const state = {
  versioning: 'Suspended',
  pab: false,
  lifecycle: FOREIGN as string | null,
  puts: [] as string[],
};

const err = (res: http.ServerResponse, status: number, code: string) => {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`);
};
const xml = (res: http.ServerResponse, body: string) => {
  res.writeHead(200, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>${body}`);
};

let server: http.Server;
async function start(): Promise<string> {
  const port = await freePort();
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const q = new URL(req.url!, 'http://x').searchParams;
      if (req.method === 'PUT' && q.has('lifecycle')) {
        state.puts.push(body);
        state.lifecycle = body;
        res.writeHead(200);
        return res.end();
      }
      if (q.has('versioning')) return xml(res, `<VersioningConfiguration><Status>${state.versioning}</Status></VersioningConfiguration>`);
      if (q.has('encryption')) return xml(res, '<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>');
      if (q.has('publicAccessBlock')) {
        if (!state.pab) return err(res, 404, 'NoSuchPublicAccessBlockConfiguration');
        return xml(res, '<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>');
      }
      if (q.has('policy')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ Statement: [{ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }] }));
      }
      if (q.has('object-lock')) return err(res, 404, 'ObjectLockConfigurationNotFoundError');
      if (q.has('lifecycle')) return state.lifecycle ? xml(res, state.lifecycle) : err(res, 404, 'NoSuchLifecycleConfiguration');
      err(res, 501, 'NotImplemented');
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${port}`;
}

afterAll(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

describe('bucket settings', () => {
  it('check names what is missing and how to fix it; lifecycle --apply keeps foreign rules; then check passes', async () => {
    const endpoint = await start();
    const env = baseEnv({ AWS_ENDPOINT_URL_S3: endpoint });
    const r1 = await run(['bucket', 'check', '--to', 's3://acme-backups/prod/'], { env });
    expect(r1.code, r1.stderr).toBe(7);
    expect(r1.stdout).toMatch(/MISSING\s+versioning: versioning is Suspended[\s\S]*fix: aws s3api put-bucket-versioning --bucket acme-backups/);
    expect(r1.stdout).toMatch(/MISSING\s+public access block/);
    expect(r1.stdout).toMatch(/MISSING\s+lifecycle rules: rule pgbackup-prod\/daily is missing[\s\S]*fix: pgbackup bucket lifecycle --apply --to s3:\/\/acme-backups\/prod\//);
    expect(r1.stdout).toMatch(/ok\s+default encryption: AES256/);
    expect(r1.stdout).toMatch(/ok\s+TLS-only policy/);
    expect(r1.stdout).toMatch(/advice\s+object lock/);
    expect(r1.stderr).toMatch(/versioning, public access block, lifecycle rules/);

    const r2 = await run(['bucket', 'lifecycle', '--apply', '--to', 's3://acme-backups/prod/'], { env });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toContain('kept 1 other rule(s)');
    const put = state.puts[0]!;
    expect(put).toContain('<ID>logs-expiry</ID>');
    for (const t of ['daily', 'weekly', 'monthly', 'yearly']) expect(put).toContain(`<ID>pgbackup-prod/${t}</ID>`);
    expect(put).toMatch(/<DaysAfterInitiation>1<\/DaysAfterInitiation>/);

    state.versioning = 'Enabled';
    state.pab = true;
    const r3 = await run(['bucket', 'check', '--to', 's3://acme-backups/prod/', '--json'], { env });
    expect(r3.code, r3.stdout + r3.stderr).toBe(0);
    const j = JSON.parse(r3.stdout);
    expect(j.findings.find((f: { check: string }) => f.check === 'lifecycle rules').status).toBe('ok');

    // Settings drift (a tier kept for another number of days) is caught.
    const r4 = await run(['bucket', 'check', '--to', 's3://acme-backups/prod/'], { env: { ...env, PGBACKUP_KEEP_DAILY_DAYS: '14' } });
    expect(r4.code).toBe(7);
    expect(r4.stdout).toMatch(/rule pgbackup-prod\/daily differs/);
  });
});
