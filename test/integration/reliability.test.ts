import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import http from 'node:http';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { run, url, tmp, createDb, snapshot, s3keys, newIdentity, baseEnv, S3, filesUnder, dropDb, BIN, ROOT, sql } from './helpers.js';
// @ts-expect-error plain JS test support
import { startFaultyProxy } from '../support/faulty-proxy.mjs';
// @ts-expect-error plain JS test support
import { freePort } from '../support/pg.mjs';

const DB = 'rl_big';
let id: { file: string; recipient: string };
const stops: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

beforeAll(async () => {
  id = await newIdentity(tmp());
  await createDb(DB);
  // About 24 MB of hex text: several 5 MiB parts even after gzip.
  await sql(DB, `CREATE TABLE blob AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) AS v FROM generate_series(1, 180000) g`);
});

async function proxy(decide: (req: http.IncomingMessage, n: number) => unknown) {
  const p = await startFaultyProxy(S3().endpoint, decide);
  stops.push(() => p.stop());
  return p as { endpoint: string; log: Array<{ n: number; method: string; url: string; action: string | number }>; stop: () => Promise<void> };
}

/** An UploadPart request, or the proxy's log line of one. */
const isPart = (r: { method?: string; url?: string }) => r.method === 'PUT' && /partNumber=/.test(r.url ?? '');

describe('S3 faults', () => {
  it('503 SlowDown and 500 on some parts are retried; the backup succeeds and restores', async () => {
    const failed = new Set<string>();
    const p = await proxy((req) => {
      if (!isPart(req)) return undefined;
      const part = /partNumber=(\d+)/.exec(req.url!)![1]!;
      if (failed.has(part)) return undefined;
      failed.add(part);
      return Number(part) % 2 ? { status: 503, code: 'SlowDown' } : { status: 500, code: 'InternalError' };
    });
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/rl-retry/', '--recipient', id.recipient, '--part-size', '5MiB', '--compress-level', '1'], {
      env: baseEnv({ AWS_ENDPOINT_URL_S3: p.endpoint }),
    });
    expect(r.code, r.stderr).toBe(0);
    const faults = p.log.filter((l) => l.action === 503 || l.action === 500);
    expect(faults.length).toBeGreaterThanOrEqual(2);
    expect(p.log.filter((l) => isPart(l) && l.action === 'forward').length).toBeGreaterThanOrEqual(faults.length);
    await dropDb('rl_back');
    const key = r.stdout.trim().slice('rl-retry/'.length);
    const rr = await run(['restore', key, '--from', 's3://backups/rl-retry/', '--to', url('rl_back'), '--create', '--identity', id.file]);
    expect(rr.code, rr.stderr).toBe(0);
    expect(await snapshot('rl_back')).toEqual(await snapshot(DB));
  });

  it('every attempt failing: exit 4 after a bounded number of tries, nothing under the key', async () => {
    const p = await proxy((req) => (isPart(req) ? { status: 503, code: 'SlowDown' } : undefined));
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/rl-allfail/', '--recipient', id.recipient, '--part-size', '5MiB'], {
      env: baseEnv({ AWS_ENDPOINT_URL_S3: p.endpoint, AWS_MAX_ATTEMPTS: '3' }),
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/SlowDown|503/);
    expect(await s3keys('backups', 'rl-allfail/')).toEqual([]);
    const partTries = p.log.filter((l) => isPart(l)).length;
    expect(partTries).toBeGreaterThanOrEqual(3);
    expect(partTries).toBeLessThanOrEqual(3 * 5); // bounded: 3 attempts for each part in flight
    expect(p.log.some((l) => l.method === 'DELETE' && /uploadId=/.test(l.url))).toBe(true); // abort attempted
  });

  it('the S3 server gone mid-upload (connections dropped): exit 4, nothing under the key', async () => {
    let parts = 0;
    const p = await proxy((req) => {
      if (isPart(req)) parts++;
      return parts >= 2 ? 'drop' : undefined;
    });
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/rl-gone/', '--recipient', id.recipient, '--part-size', '5MiB'], {
      env: baseEnv({ AWS_ENDPOINT_URL_S3: p.endpoint, AWS_MAX_ATTEMPTS: '2' }),
    });
    expect(r.code).toBe(4);
    expect(await s3keys('backups', 'rl-gone/')).toEqual([]);
  });

  it('a server that stops answering one part: the request times out (PGBACKUP_S3_TIMEOUT), is retried, and the backup restores', async () => {
    let stalled = 0;
    const p = await proxy((req) => (isPart(req) && /partNumber=2\b/.test(req.url ?? '') && stalled++ === 0 ? 'stall' : undefined));
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/rl-stall1/', '--recipient', id.recipient, '--part-size', '5MiB', '--compress-level', '1'], {
      env: baseEnv({ AWS_ENDPOINT_URL_S3: p.endpoint, PGBACKUP_S3_TIMEOUT: '2s' }),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(p.log.filter((l) => l.action === 'stall')).toHaveLength(1);
    await dropDb('rl_stall');
    const key = r.stdout.trim().slice('rl-stall1/'.length);
    const rr = await run(['restore', key, '--from', 's3://backups/rl-stall1/', '--to', url('rl_stall'), '--create', '--identity', id.file]);
    expect(rr.code, rr.stderr).toBe(0);
    expect(await snapshot('rl_stall')).toEqual(await snapshot(DB));
  });

  it('a server that stops answering altogether: exit 4 naming the timeout, not a run that hangs with pg_dump holding its snapshot', async () => {
    const p = await proxy((req) => (isPart(req) ? 'stall' : undefined));
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/rl-stall2/', '--recipient', id.recipient, '--part-size', '5MiB', '--compress-level', '1'], {
      env: baseEnv({ AWS_ENDPOINT_URL_S3: p.endpoint, PGBACKUP_S3_TIMEOUT: '2s', AWS_MAX_ATTEMPTS: '2' }),
    });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain('PGBACKUP_S3_TIMEOUT');
    expect(await s3keys('backups', 'rl-stall2/')).toEqual([]);
    expect(await sql('postgres', `SELECT pid FROM pg_stat_activity WHERE datname = '${DB}' AND application_name = 'pg_dump'`)).toEqual([]);
  });

  it('a 200 answer with an error body to CompleteMultipartUpload is a failure', async () => {
    const p = await proxy((req) =>
      req.method === 'POST' && /uploadId=/.test(req.url ?? '')
        ? { status: 200, body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>' }
        : undefined,
    );
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/rl-200err/', '--recipient', id.recipient, '--part-size', '5MiB'], {
      env: baseEnv({ AWS_ENDPOINT_URL_S3: p.endpoint, AWS_MAX_ATTEMPTS: '2' }),
    });
    expect(r.code).toBe(4);
    expect(await s3keys('backups', 'rl-200err/')).toEqual([]);
  });
});

describe('interrupted restore', () => {
  it('SIGTERM while psql loads: exit 143, psql stopped, the target exactly as before', async () => {
    const out = tmp();
    const b = await run(['backup', '--database', url(DB), '--to', out, '--recipient', id.recipient, '--compress-level', '1']);
    expect(b.code, b.stderr).toBe(0);
    await createDb('rl_sigterm');
    await sql('rl_sigterm', `CREATE TABLE keep (v text); INSERT INTO keep VALUES ('before')`);
    const before = await snapshot('rl_sigterm');
    let pid = 0;
    const p = run(['restore', b.stdout.trim(), '--from', out, '--to', url('rl_sigterm'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file], {
      onSpawn: (x) => (pid = x),
    });
    // Wait until psql is connected to the target and loading, then interrupt.
    const deadline = Date.now() + 20000;
    for (;;) {
      const rows = await sql(`postgres`, `SELECT 1 FROM pg_stat_activity WHERE datname = 'rl_sigterm' AND application_name = 'psql' AND state <> 'idle'`);
      if (rows.length) break;
      if (Date.now() > deadline) throw new Error('psql never started loading');
      await new Promise((res) => setTimeout(res, 20));
    }
    process.kill(pid, 'SIGTERM');
    const r = await p;
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toContain('interrupted by SIGTERM');
    expect(await snapshot('rl_sigterm')).toEqual(before);
    await new Promise((res) => setTimeout(res, 200));
    expect(await sql('postgres', `SELECT pid FROM pg_stat_activity WHERE datname = 'rl_sigterm' AND application_name = 'psql'`)).toEqual([]);
  });
});

describe('folder faults', () => {
  it('a folder that runs out of space (file-size limit): exit 4, no partial file left', async () => {
    const out = tmp();
    const r = await new Promise<{ code: number | null; stderr: string }>((res) => {
      // RLIMIT_FSIZE of 1 MiB; SIGXFSZ ignored so the write fails with EFBIG instead of killing us.
      const child = spawn('sh', ['-c', `trap '' XFSZ; ulimit -f 2048; exec "${process.execPath}" "${BIN}" backup --database '${url(DB)}' --to '${out}' --recipient ${id.recipient}`], {
        env: baseEnv(),
        cwd: ROOT,
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => res({ code, stderr }));
    });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/too large|EFBIG|no space/i);
    expect(filesUnder(out)).toEqual([]);
  });
});

describe('notifications', () => {
  async function listener(status = 200) {
    const port = await freePort();
    const hits: Array<{ method: string; url: string; body: string }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        hits.push({ method: req.method!, url: req.url!, body });
        res.writeHead(status);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    stops.push(() => new Promise((r) => server.close(() => r())));
    return { base: `http://127.0.0.1:${port}`, hits };
  }

  it('pings start and success, and posts a JSON summary', async () => {
    const l = await listener();
    const r = await run(['backup', '--database', url('postgres'), '--to', tmp(), '--no-encryption', '--healthcheck-url', `${l.base}/hc/abc`, '--webhook-url', `${l.base}/hook`]);
    expect(r.code, r.stderr).toBe(0);
    expect(l.hits.map((h) => h.url)).toEqual(expect.arrayContaining(['/hc/abc/start', '/hc/abc', '/hook']));
    const hook = JSON.parse(l.hits.find((h) => h.url === '/hook')!.body);
    expect(hook).toMatchObject({ tool: 'pgbackup', status: 'success' });
    expect(hook.backups[0]).toMatchObject({ database: 'postgres' });
    expect(hook.backups[0].key).toMatch(/^postgres\//);
    expect(typeof hook.durationMs).toBe('number');
  });

  it('pings /fail with the error on failure', async () => {
    const l = await listener();
    const r = await run(['backup', '--database', 'postgres://postgres:x@127.0.0.1:1/db', '--to', tmp(), '--no-encryption', '--healthcheck-url', `${l.base}/hc`, '--webhook-url', `${l.base}/hook`]);
    expect(r.code).toBe(3);
    expect(l.hits.map((h) => h.url)).toEqual(expect.arrayContaining(['/hc/start', '/hc/fail', '/hook']));
    const hook = JSON.parse(l.hits.find((h) => h.url === '/hook')!.body);
    expect(hook.status).toBe('fail');
    expect(hook.error).toContain('connection refused');
    expect(JSON.stringify(l.hits)).not.toContain('postgres:x@');
  });

  it('a notification that fails is a warning, never the reason a good backup fails', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const l = await listener(500);
    const r = await run(['backup', '--database', url('postgres'), '--to', tmp(), '--no-encryption', '--healthcheck-url', `${dead}/hc`, '--webhook-url', `${l.base}/hook`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/notification failed/);
    expect(r.stderr).toMatch(/notification answered with an error/);
  });
});

describe('bad input', () => {
  it('malformed identities and durations exit 2 naming them', async () => {
    const f = join(tmp(), 'bad-id.txt');
    writeFileSync(f, 'AGE-SECRET-KEY-1NOTREALLY\n');
    const r = await run(['fetch', 'x.sql.gz.age', '--identity', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad-id.txt: line 1: malformed age identity');
    expect(r.stderr).not.toContain('NOTREALLY');
    const r2 = await run(['backup', '--no-encryption', '--stall-timeout', 'forever']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('--stall-timeout');
  });
});

describe('part plan', () => {
  it('a dump that outgrows its part plan fails before the part limit, with a clear error', async () => {
    const r = await run(['backup', '--database', url(DB), '--to', 's3://backups/rl-plan/', '--recipient', id.recipient, '--part-size', '5MiB', '--compress-level', '1'], {
      env: baseEnv({ PGBACKUP_S3_MAX_PARTS: '2', PGBACKUP_S3_MAX_PART_SIZE: '5MiB' }),
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('outgrew its upload plan (2 parts of 5.0 MiB');
    expect(await s3keys('backups', 'rl-plan/')).toEqual([]);
  });
});
