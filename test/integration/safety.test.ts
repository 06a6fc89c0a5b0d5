// Operator safety (issue 11): habits operators have (re-running a restore, --latest, a partial
// dump of one table, a second prefix in one bucket, Ctrl-C at a prompt) never destroy data.
// Each test makes the problem happen for real against the suite's PostgreSQL cluster and
// S3 server / folders, and checks the data and the target's contents afterwards.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import http from 'node:http';
import pg from 'pg';
import { closeSync, constants as fsConstants, copyFileSync, existsSync, lstatSync, openSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { PG, onTty, run, url, tmp, baseEnv, createDb, dropDb, snapshot, sql, newIdentity, filesUnder, s3keys, needCommand, fakeBinDir } from './helpers.js';
// @ts-expect-error plain JS test support
import { freePort } from '../support/pg.mjs';

let dir: string;
let id: { file: string; recipient: string };

beforeAll(async () => {
  dir = tmp();
  id = await newIdentity(dir);
});

/** A small database with two tables whose rows say which state it is in. */
async function twoTables(db: string, state: string): Promise<void> {
  await createDb(db);
  await sql(db, `CREATE TABLE a (v text); CREATE TABLE b (v text); INSERT INTO a VALUES ('${state}-a'); INSERT INTO b VALUES ('${state}-b')`);
}

async function backup(db: string, to: string, extra: string[] = []): Promise<string> {
  const r = await run(['backup', '--database', url(db), '--to', to, '--recipient', id.recipient, ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

function manifestOf(folder: string, key: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(folder, `${key}.json`), 'utf8'));
}

describe('backup kinds', () => {
  it('re-running "restore --latest --clean" restores the backup again, not the safety backup the first run took', async () => {
    const db = 'sf_rerun';
    const folder = tmp();
    await twoTables(db, 'good');
    const good = await snapshot(db);
    await backup(db, folder);
    // The database breaks; the operator restores the latest backup over it, twice (a retry).
    await sql(db, `DELETE FROM a; INSERT INTO b VALUES ('broken')`);
    const cmd = ['restore', '--latest', '--database', db, '--from', folder, '--to', url(db), '--clean', '--yes', '--identity', id.file];
    const r1 = await run(cmd);
    expect(r1.code, r1.stderr).toBe(0);
    expect(await snapshot(db)).toEqual(good);
    const safety = /safety backup: \S+?\/(sf_rerun\/\S+)/.exec(r1.stderr)![1]!;
    const m = manifestOf(folder, safety);
    expect(m.kind).toBe('safety');
    expect(m.tier).toBe('daily');
    expect(m.safetyFor).toMatchObject({ database: db, host: '127.0.0.1' });
    expect(String((m.safetyFor as { restoring: string }).restoring)).toContain('sf_rerun_');
    const r2 = await run(cmd);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).not.toContain(safety.split('/').pop());
    expect(await snapshot(db)).toEqual(good);
    // list shows each backup's kind, text and JSON (with ages in seconds).
    const l = await run(['list', '--from', folder, '--json']);
    const rows = JSON.parse(l.stdout).backups as Array<{ kind: string; ageSeconds: number; key: string; safetyFor?: unknown }>;
    expect(rows.map((x) => x.kind).sort()).toEqual(['full', 'safety', 'safety']);
    expect(rows.every((x) => typeof x.ageSeconds === 'number' && x.ageSeconds >= 0 && x.ageSeconds < 3600)).toBe(true);
    expect(rows.find((x) => x.key === safety)!.safetyFor).toMatchObject({ database: db });
    const t = await run(['list', '--from', folder]);
    expect(t.stdout).toMatch(/KIND/);
    expect(t.stdout).toMatch(/safety\s+complete/);
    // --any-kind takes the newest of any kind: the second run's safety backup (state "good").
    const r3 = await run([...cmd, '--any-kind', '--no-safety-backup']);
    expect(r3.code, r3.stderr).toBe(0);
    expect(await snapshot(db)).toEqual(good);
  });

  it('a partial backup (--table) is not --latest, shows as partial, and is refused over a database with --clean', async () => {
    const db = 'sf_partial';
    const folder = tmp();
    await twoTables(db, 'v1');
    const full = await backup(db, folder);
    await sql(db, `INSERT INTO a VALUES ('v2-a')`);
    const partial = await backup(db, folder, ['--table', 'a']);
    const pm = manifestOf(folder, partial);
    expect(pm.kind).toBe('partial');
    expect(pm.filters).toEqual(['--table=a']);
    expect(pm.tier).toBe('daily');
    const l = await run(['list', '--from', folder, '--json']);
    const rows = JSON.parse(l.stdout).backups as Array<{ key: string; kind: string; filters?: string[] }>;
    expect(rows.find((x) => x.key === partial)).toMatchObject({ kind: 'partial', filters: ['--table=a'] });
    expect(rows.find((x) => x.key === full)).toMatchObject({ kind: 'full' });

    // Someone drops table b by mistake; restore --latest --clean must bring back the full backup.
    await sql(db, `DROP TABLE b`);
    const r = await run(['restore', '--latest', '--database', db, '--from', folder, '--to', url(db), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(full);
    expect(await sql(db, `SELECT v FROM b`)).toEqual([{ v: 'v1-b' }]);

    // The partial backup named explicitly over a database with tables: refused, nothing changed.
    const before = await snapshot(db);
    const r2 = await run(['restore', partial, '--from', folder, '--to', url(db), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/partial backup \(--table=a\)[\s\S]*drop everything else[\s\S]*Nothing was changed/);
    expect(await snapshot(db)).toEqual(before);
    // Into a new database it restores what it holds.
    await dropDb('sf_partial_new');
    const r3 = await run(['restore', partial, '--from', folder, '--to', url('sf_partial_new'), '--create', '--identity', id.file]);
    expect(r3.code, r3.stderr).toBe(0);
    expect((await sql('sf_partial_new', `SELECT v FROM a ORDER BY v`)).map((x) => x.v)).toEqual(['v1-a', 'v2-a']);

    // A manifest written before kinds existed: inferred from pg_dump's options.
    const old = manifestOf(folder, partial);
    delete old.kind;
    delete old.filters;
    writeFileSync(join(folder, `${partial}.json`), JSON.stringify(old));
    const l2 = await run(['list', '--from', folder, '--json']);
    expect((JSON.parse(l2.stdout).backups as Array<{ key: string; kind: string }>).find((x) => x.key === partial)!.kind).toBe('partial');
    const r4 = await run(['restore', '--latest', '--database', db, '--from', folder, '--to', url('sf_partial_new'), '--clean', '--yes', '--no-safety-backup', '--identity', id.file]);
    expect(r4.code, r4.stderr).toBe(0);
    expect(r4.stdout).toContain(full);
  });
});

describe('tiers', () => {
  it('safety, partial and --tier-forced daily backups never take a period\'s slot', async () => {
    const db = 'sf_tier';
    const folder = tmp();
    await twoTables(db, 't');
    const tierOf = (k: string) => manifestOf(folder, k).tier;
    const p = await backup(db, folder, ['--table', 'a']);
    expect(tierOf(p)).toBe('daily');
    const forced = await backup(db, folder, ['--tier', 'daily']);
    expect(tierOf(forced)).toBe('daily');
    // A safety backup of this database (taken by a --clean restore into it).
    const r = await run(['restore', forced, '--from', folder, '--to', url(db), '--clean', '--yes', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    const safety = /safety backup: \S+?\/(sf_tier\/\S+)/.exec(r.stderr)![1]!;
    expect(manifestOf(folder, safety)).toMatchObject({ kind: 'safety', tier: 'daily' });
    // The first real (full, auto-tiered) backup of the year is yearly; the next one daily.
    const first = await backup(db, folder);
    expect(tierOf(first)).toBe('yearly');
    const second = await backup(db, folder);
    expect(tierOf(second)).toBe('daily');
  });
});

/** Copy a folder backup (dump and manifest) to the key it would have had at `stamp` (YYYYMMDDTHHMMSSZ). */
function copyAs(folder: string, key: string, stamp: string): string {
  const db = key.split('/')[0]!;
  const [, y, mo, d] = /^(\d{4})(\d{2})(\d{2})T/.exec(stamp)!;
  const suffix = /\.sql.*$/.exec(key.split('/').pop()!)![0];
  const to = `${db}/${y}/${mo}/${d}/${db}_${stamp}${suffix}`;
  mkdirSync(join(folder, dirname(to)), { recursive: true });
  copyFileSync(join(folder, key), join(folder, to));
  const m = JSON.parse(readFileSync(join(folder, `${key}.json`), 'utf8'));
  m.key = to;
  writeFileSync(join(folder, `${to}.json`), JSON.stringify(m));
  return to;
}

describe('choosing --latest', () => {
  it('skips an unreadable manifest, a manifest over 16 MiB and a backup dated in the future, with warnings naming them', async () => {
    const db = 'sf_latest';
    const folder = tmp();
    await twoTables(db, 'v1');
    const v1 = await backup(db, folder);
    await sql(db, `UPDATE a SET v = 'v2-a'`);
    await backup(db, folder);
    const v2 = await snapshot(db);
    await sql(db, `UPDATE a SET v = 'v3-a'`);
    const v3 = await backup(db, folder);
    await sql(db, `UPDATE a SET v = 'v4-a'`);
    const v4 = await backup(db, folder);
    // v1 reappears dated next year (a machine with a wrong clock); v3's manifest is damaged;
    // v4's manifest is 17 MiB (whitespace: valid JSON, but no manifest is that large).
    const future = copyAs(folder, v1, `${new Date().getUTCFullYear() + 1}0101T000000Z`);
    writeFileSync(join(folder, `${v3}.json`), '{"format": 1, "trunc');
    writeFileSync(join(folder, `${v4}.json`), readFileSync(join(folder, `${v4}.json`), 'utf8') + ' '.repeat(17 * 1024 * 1024));
    await createDb('sf_latest_dst');
    const r = await run(['restore', '--latest', '--database', db, '--from', folder, '--to', url('sf_latest_dst'), '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await snapshot('sf_latest_dst')).toEqual(v2);
    expect(r.stderr).toContain(future);
    expect(r.stderr).toMatch(/in the future/);
    expect(r.stderr).toContain(v3);
    expect(r.stderr).toMatch(/not valid JSON/);
    expect(r.stderr).toContain(v4);
    expect(r.stderr).toMatch(/over the 16 MiB/);
    // verify --latest takes the same backup.
    const v = await run(['verify', '--latest', '--database', db, '--from', folder, '--identity', id.file]);
    expect(v.code, v.stderr).toBe(0);
    // Named explicitly, the oversized manifest is not read either: the restore goes on without it.
    await dropDb('sf_latest_big');
    const r2 = await run(['restore', v4, '--from', folder, '--to', url('sf_latest_big'), '--create', '--identity', id.file]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(/over the 16 MiB/);
    expect((await sql('sf_latest_big', 'SELECT v FROM a'))[0]).toEqual({ v: 'v4-a' });
  });

  it('--at without a zone is UTC, whatever the machine\'s time zone', async () => {
    const db = 'sf_at';
    const folder = tmp();
    await twoTables(db, 'seven');
    const k7 = await backup(db, folder);
    await sql(db, `UPDATE a SET v = 'ten-a'`);
    const k10 = await backup(db, folder);
    copyAs(folder, k7, '20200601T070000Z');
    copyAs(folder, k10, '20200601T100000Z');
    for (const at of ['2020-06-01T08:00:00', '2020-06-01 08:00', '20200601T080000Z']) {
      await dropDb('sf_at_dst');
      // New York is UTC-4 in June: read as local time, 08:00 would be 12:00Z and pick the 10:00 backup.
      const r = await run(['restore', '--at', at, '--database', db, '--from', folder, '--to', url('sf_at_dst'), '--create', '--identity', id.file], { env: baseEnv({ TZ: 'America/New_York' }) });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('20200601T070000Z');
      expect((await sql('sf_at_dst', 'SELECT v FROM a'))[0]).toEqual({ v: 'seven-a' });
    }
  });
});

describe('restore target', () => {
  it('is never taken from DATABASE_URL or PG* alone', async () => {
    const db = 'sf_noto';
    const folder = tmp();
    await twoTables(db, 'backup');
    await backup(db, folder);
    await twoTables('sf_noto_prod', 'production');
    const before = await snapshot('sf_noto_prod');
    const u = new URL(url('sf_noto_prod'));
    const env = baseEnv({ DATABASE_URL: url('sf_noto_prod'), PGHOST: u.hostname, PGPORT: u.port, PGUSER: 'postgres', PGPASSWORD: decodeURIComponent(u.password), PGDATABASE: 'sf_noto_prod' });
    const r = await run(['restore', '--latest', '--database', db, '--from', folder, '--clean', '--yes', '--no-safety-backup', '--identity', id.file], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--to: required/);
    expect(r.stderr).toMatch(/never takes its target from DATABASE_URL or PG\*/);
    expect(await snapshot('sf_noto_prod')).toEqual(before);
  });
});

describe('verify with nothing to verify', () => {
  it('fails (exit 4) on an empty folder, a mistyped folder or prefix, and a database without backups', async () => {
    const empty = tmp();
    for (const args of [
      ['--all', '--from', empty],
      ['--all', '--from', join(empty, 'typo')],
      ['--all', '--from', 's3://backups/no-such-prefix-sf/'],
      ['--all', '--from', empty, '--database', 'nobody'],
      ['--latest', '--from', empty, '--database', 'nobody'],
    ]) {
      const r = await run(['verify', ...args, '--identity', id.file]);
      expect(r.code, args.join(' ')).toBe(4);
      expect(r.stderr).toMatch(/no (complete )?backups?/);
      expect(r.stdout).not.toMatch(/verified/);
    }
    expect(filesUnder(empty)).toEqual([]);
    expect(await s3keys('backups', 'no-such-prefix-sf/')).toEqual([]);
  });
});

describe('the --clean confirmation on a terminal', () => {
  beforeAll(() => needCommand('script', 'bsdutils'));
  it('names server, target size and the backup\'s key, age and kind; Ctrl-C and Ctrl-D exit 130 with nothing changed', async () => {
    const db = 'sf_prompt';
    const folder = tmp();
    await twoTables(db, 'backup');
    const key = await backup(db, folder);
    await sql(db, `CREATE TABLE c (v text); INSERT INTO c SELECT 'x' FROM generate_series(1, 100)`);
    const before = await snapshot(db);
    const cmd = ['restore', key, '--from', folder, '--to', url(db), '--clean', '--identity', id.file];
    for (const [what, keys] of [['Ctrl-C', '\x03'], ['Ctrl-D', '\x04']] as const) {
      const r = await onTty(cmd, keys, baseEnv());
      expect(r.out).toMatch(new RegExp(`database "${db}" on 127\\.0\\.0\\.1:${new URL(url(db)).port}: 3 table\\(s\\), [\\d.]+ MiB`));
      expect(r.out).toContain(key);
      expect(r.out).toMatch(/full backup, taken \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+ minute\(s\) ago\), 2 table\(s\)/);
      expect(r.out).toMatch(/Replace the contents of database "sf_prompt" on 127\.0\.0\.1:\d+\? \[y\/N\]/);
      expect(r.code, `${what}: ${r.out}`).toBe(130);
      expect(r.out).toMatch(/at the confirmation prompt; nothing was changed/);
      expect(r.out).not.toMatch(/bug/);
      expect(await snapshot(db)).toEqual(before);
      // No safety backup either: only the one backup is in the folder.
      expect(filesUnder(folder).filter((f) => !f.endsWith('.json'))).toEqual([key]);
    }
  });
});

describe('folder targets', () => {
  it('the next backup of a database removes the .partial files a killed backup left over a day ago', async () => {
    const db = 'sf_gc';
    const folder = tmp();
    await twoTables(db, 'gc');
    // A backup killed with SIGKILL mid-stream (as by the OOM killer) leaves its hidden partial file.
    const pidFile = join(tmp(), 'sleeper.pid');
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | (head -c 3000; exec sh -c 'echo $$ > "${pidFile}"; exec sleep 60')` });
    let pid = 0;
    const killed = run(['backup', '--database', url(db), '--to', folder, '--recipient', id.recipient], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin }), onSpawn: (p) => (pid = p) });
    const partials = () => filesUnder(folder).filter((f) => f.endsWith('.partial'));
    for (let i = 0; i < 200 && (partials().length === 0 || !existsSync(pidFile)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(partials()).toHaveLength(1);
    process.kill(pid, 'SIGKILL');
    expect((await killed).signal).toBe('SIGKILL');
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    const [left] = partials();
    expect(left).toMatch(/^sf_gc\/\d{4}\/\d\d\/\d\d\/\.[0-9a-f]{12}\.partial$/);
    // ... two days ago. A fresh partial file (a backup still running) and another database's stay.
    const old = (Date.now() - 2 * 86_400_000) / 1000;
    utimesSync(join(folder, left!), old, old);
    mkdirSync(join(folder, 'sf_gc/2020/01/01'), { recursive: true });
    writeFileSync(join(folder, 'sf_gc/2020/01/01/.0123456789ab.partial'), 'still being written');
    mkdirSync(join(folder, 'other/2020/01/01'), { recursive: true });
    writeFileSync(join(folder, 'other/2020/01/01/.ba9876543210.partial'), 'not this database');
    utimesSync(join(folder, 'other/2020/01/01/.ba9876543210.partial'), old, old);
    const key = await backup(db, folder);
    expect(filesUnder(folder)).toEqual([key, `${key}.json`, 'other/2020/01/01/.ba9876543210.partial', 'sf_gc/2020/01/01/.0123456789ab.partial'].sort());
    const v = await run(['verify', key, '--from', folder, '--identity', id.file]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('fetch -o FILE refuses an existing file unless --force', async () => {
    const db = 'sf_fetch';
    const folder = tmp();
    await twoTables(db, 'fetched');
    const key = await backup(db, folder);
    const out = join(tmp(), 'notes.sql');
    writeFileSync(out, 'my precious notes\n');
    const r = await run(['fetch', key, '--from', folder, '--identity', id.file, '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/exists; give --force/);
    expect(readFileSync(out, 'utf8')).toBe('my precious notes\n');
    expect(readdirSync(dirname(out))).toEqual(['notes.sql']);
    const r2 = await run(['fetch', key, '--from', folder, '--identity', id.file, '-o', out, '--force']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain("fetched-a");
    const fresh = join(dirname(out), 'new.sql');
    const r3 = await run(['fetch', key, '--from', folder, '--identity', id.file, '-o', fresh]);
    expect(r3.code, r3.stderr).toBe(0);
    expect(readFileSync(fresh, 'utf8')).toBe(readFileSync(out, 'utf8'));
  });
  it('fetch -o a device or a named pipe writes into it, never replaces it (-o /dev/null stays a device)', async () => {
    // A named pipe stands in for /dev/null: the old code renamed its temporary file over the
    // path given (with --force) or refused it as an existing file (without).
    const db = 'sf_fetch_fifo';
    const folder = tmp();
    await twoTables(db, 'piped');
    const key = await backup(db, folder);
    const dir = tmp();
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    for (const force of [[], ['--force']]) {
      const got = join(dir, `got${force.length}.sql`);
      const reader = spawn('sh', ['-c', `cat "${fifo}" > "${got}"`]);
      const readerDone = new Promise((r) => reader.on('close', r));
      const r = await run(['fetch', key, '--from', folder, '--identity', id.file, '-o', fifo, ...force]);
      // A fetch that never opened the pipe would leave the reader waiting: open and close it here.
      try {
        closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
      } catch {
        /* no reader left: it has its end of file */
      }
      await readerDone;
      expect(r.code, r.stderr).toBe(0);
      expect(lstatSync(fifo).isFIFO()).toBe(true);
      expect(readFileSync(got, 'utf8')).toContain('piped-a');
    }
    expect(readdirSync(dir).sort()).toEqual(['got0.sql', 'got1.sql', 'pipe']);
    const d = await run(['fetch', key, '--from', folder, '--identity', id.file, '-o', dir, '--force']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/is a folder/);
  });
});

describe('lifecycle rules of several prefixes in one bucket', () => {
  // s3rver has no lifecycle API: a small HTTP stub answers it (as in bucket-settings.test.ts),
  // driven through the real SDK by the real CLI. Other bucket settings answer 501 (reported unknown).
  let server: http.Server | undefined;
  afterAll(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('--apply for one prefix keeps every other rule; check judges only its own prefix\'s rules', async () => {
    // What the previous version wrote for prod/: fixed IDs, plus a rule that is not ours.
    const legacyProd = ['daily', 'weekly', 'monthly', 'yearly']
      .map((t) => `<Rule><ID>pgbackup-${t}</ID><Filter><And><Prefix>prod/</Prefix><Tag><Key>tier</Key><Value>${t}</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>7</Days></Expiration></Rule>`)
      .join('');
    let lifecycle = `<LifecycleConfiguration><Rule><ID>logs-expiry</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule>${legacyProd}</LifecycleConfiguration>`;
    const port = await freePort();
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const q = new URL(req.url!, 'http://x').searchParams;
        if (q.has('lifecycle') && req.method === 'PUT') {
          lifecycle = body;
          res.writeHead(200);
          return res.end();
        }
        if (q.has('lifecycle')) {
          res.writeHead(200, { 'content-type': 'application/xml' });
          return res.end(`<?xml version="1.0" encoding="UTF-8"?>${lifecycle}`);
        }
        res.writeHead(501, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>NotImplemented</Message></Error>');
      });
    });
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', () => r()));
    const env = baseEnv({ AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` });
    const ids = () => [...lifecycle.matchAll(/<ID>([^<]+)<\/ID>/g)].map((m) => m[1]!);
    const lifecycleFinding = async (prefix: string) => {
      const r = await run(['bucket', 'check', '--to', `s3://acme/${prefix}`, '--json'], { env });
      return JSON.parse(r.stdout).findings.find((f: { check: string }) => f.check === 'lifecycle rules');
    };

    // Before: prod/'s old rules are reported for prod/ with a fix naming prod/.
    const f0 = await lifecycleFinding('prod/');
    expect(f0.status).toBe('missing');
    expect(f0.detail).toMatch(/pgbackup-daily.*old IDs/);
    expect(f0.fix).toBe('pgbackup bucket lifecycle --apply --to s3://acme/prod/');

    // Applying staging/ keeps prod/'s rules (even the old ones) and the foreign one.
    const a1 = await run(['bucket', 'lifecycle', '--apply', '--to', 's3://acme/staging/'], { env });
    expect(a1.code, a1.stderr).toBe(0);
    expect(ids()).toEqual(['logs-expiry', 'pgbackup-daily', 'pgbackup-weekly', 'pgbackup-monthly', 'pgbackup-yearly', ...['daily', 'weekly', 'monthly', 'yearly', 'abort-incomplete-uploads', 'noncurrent-versions'].map((n) => `pgbackup-staging/${n}`)]);
    expect(lifecycle).toContain('<Prefix>prod/</Prefix>');
    // Applying prod/ replaces prod/'s old rules and keeps staging/'s.
    const a2 = await run(['bucket', 'lifecycle', '--apply', '--to', 's3://acme/prod/'], { env });
    expect(a2.code, a2.stderr).toBe(0);
    expect(a2.stdout).toMatch(/replaced 4 rule\(s\) of this prefix/);
    const all = ids();
    expect(all.filter((i) => i.startsWith('pgbackup-staging/'))).toHaveLength(6);
    expect(all.filter((i) => i.startsWith('pgbackup-prod/'))).toHaveLength(6);
    expect(all).toContain('logs-expiry');
    expect(all).not.toContain('pgbackup-daily');
    // Each prefix's check passes, judged on its own rules; re-applying staging/ changes nothing of prod/'s.
    expect((await lifecycleFinding('prod/')).status).toBe('ok');
    expect((await lifecycleFinding('staging/')).status).toBe('ok');
    const before = lifecycle;
    await run(['bucket', 'lifecycle', '--apply', '--to', 's3://acme/staging/'], { env });
    expect(ids().sort()).toEqual([...all].sort());
    expect(lifecycle.length).toBe(before.length);
  });
});

describe('locks', () => {
  it('--lock-timeout: a session holding a lock on the target stops the restore (exit 6) naming it; --terminate-connections ends it first', async () => {
    const db = 'sf_lock';
    const folder = tmp();
    await twoTables(db, 'backup');
    const backupState = await snapshot(db);
    const key = await backup(db, folder);
    await sql(db, `INSERT INTO a VALUES ('newer')`);
    const before = await snapshot(db);
    // An application that read from the table and left its transaction open.
    const app = new pg.Client({ host: '127.0.0.1', port: PG().port, user: 'postgres', password: PG().password, database: db, application_name: 'billing-app' });
    app.on('error', () => undefined);
    await app.connect();
    const appPid = (await app.query('SELECT pg_backend_pid() AS p')).rows[0].p;
    await app.query('BEGIN');
    await app.query('SELECT * FROM a');
    try {
      const cmd = ['restore', key, '--from', folder, '--to', url(db), '--clean', '--yes', '--lock-timeout', '2s', '--identity', id.file];
      const t0 = Date.now();
      const r = await run(cmd);
      expect(r.code, r.stderr).toBe(6);
      expect(Date.now() - t0).toBeLessThan(60_000);
      expect(r.stderr).toMatch(/--lock-timeout/);
      expect(r.stderr.replace(/\\"/g, '"')).toContain(`pid ${appPid} (user postgres, application "billing-app", idle in transaction`);
      expect(r.stderr).toMatch(/nothing was changed/);
      expect(await snapshot(db)).toEqual(before);
      const r2 = await run([...cmd, '--terminate-connections']);
      expect(r2.code, r2.stderr).toBe(0);
      expect(r2.stderr).toMatch(/ended 1 other session/);
      expect(await snapshot(db)).toEqual(backupState);
      await expect(app.query('SELECT 1')).rejects.toThrow();
    } finally {
      await app.end().catch(() => undefined);
    }
  });

  it('a --clean restore that cannot fit in the server\'s lock table stops before the safety backup, with the fix', async () => {
    const db = 'sf_manylocks';
    const folder = tmp();
    await createDb(db);
    const [s] = await sql<{ l: number; b: number; p: number }>(
      'postgres',
      `SELECT current_setting('max_locks_per_transaction')::int AS l, current_setting('max_prepared_transactions')::int AS p,
              current_setting('max_connections')::int + current_setting('autovacuum_max_workers')::int + 1
              + current_setting('max_worker_processes')::int + current_setting('max_wal_senders')::int AS b`,
    );
    const n = Math.ceil((s!.l * (s!.b + s!.p)) / 2) + 100;
    await sql(db, `DO $$ BEGIN FOR i IN 1..${n} LOOP EXECUTE format('CREATE TABLE t%s (id int)', i); END LOOP; END $$`);
    await sql(db, `INSERT INTO t1 VALUES (42)`);
    const key = await backup(db, folder);
    const r = await run(['restore', key, '--from', folder, '--to', url(db), '--clean', '--yes', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(new RegExp(`about ${2 * n} relations[\\s\\S]*max_locks_per_transaction \\(${s!.l}\\)[\\s\\S]*out of shared memory[\\s\\S]*no safety backup was taken[\\s\\S]*set max_locks_per_transaction = \\d+`));
    expect(filesUnder(folder)).toEqual([key, `${key}.json`]);
    expect((await sql(db, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`))[0]).toEqual({ n });
    expect(await sql(db, 'SELECT id FROM t1')).toEqual([{ id: 42 }]);
    await dropDb(db);
  });
});
