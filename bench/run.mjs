#!/usr/bin/env node
// pgbackup benchmark: times the tool against shell baselines in one run, on one machine,
// and prints ratios (these machines are noisy; absolute times mean little) and peak RSS.
//
//   npm run bench                 # about 1 GB of SQL
//   npm run bench -- --gb 4       # about 4 GB of SQL
//   npm run bench -- --only backup|restore|bigtable|reader|selective
//
// Needs: PostgreSQL server and client binaries, `gzip`, `pigz` and the `age` CLI for the shell
// baselines (apt-get install age pigz). Starts its own cluster and S3 server, stops them at the end.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster, clientBinDir } from '../test/support/pg.mjs';
import { startS3 } from '../test/support/s3.mjs';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SqlScan } from './baseline/linescan.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/pgbackup');
const args = process.argv.slice(2);
const gb = Number(args[args.indexOf('--gb') + 1] > 0 && args.includes('--gb') ? args[args.indexOf('--gb') + 1] : 1);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
const extraBackupArgs = args.includes('--backup-args') ? args[args.indexOf('--backup-args') + 1].split(' ') : [];

const work = mkdtempSync(join(tmpdir(), 'pgbackup-bench-'));
const log = (...a) => process.stderr.write(a.join(' ') + '\n');

/** Run a command; returns wall ms and peak RSS (VmHWM, polled) of the given process. */
function timed(cmd, argv, { env = process.env, cwd = ROOT, rssOf = true } = {}) {
  return new Promise((resolveP, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, argv, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let peak = 0;
    const poll = setInterval(() => {
      if (!rssOf) return;
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      } catch {}
    }, 50);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${cmd} ${argv.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolveP({ ms, peak, stdout, stderr });
    });
  });
}

const sh = (script, env) => timed('bash', ['-o', 'pipefail', '-c', script], { env, rssOf: false });
const mib = (n) => (n / 1024 / 1024).toFixed(0);
const sec = (ms) => (ms / 1000).toFixed(1);

async function main() {
  // A server that does not start leaves nothing behind: not its own folder, not this run's.
  const [cluster, s3] = await Promise.all([startCluster(), startS3({ buckets: ['bench'] })].map((p) => p.catch((e) => ({ failed: e })))).then(async (got) => {
    const failed = got.find((g) => 'failed' in g);
    if (!failed) return got;
    for (const g of got) if (!('failed' in g)) await g.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
    throw failed.failed;
  });
  const stop = async () => {
    await s3.stop().catch(() => {});
    await cluster.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  };
  process.on('SIGINT', () => stop().then(() => process.exit(130)));
  try {
    const bin = clientBinDir();
    const pgenv = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: 'postgres', PGPASSWORD: cluster.password, PGDATABASE: 'bench' };
    const psql = (sql, db = 'bench') => execFileSync(join(bin, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql], { env: pgenv, stdio: ['ignore', 'ignore', 'inherit'] });
    psql('CREATE DATABASE bench', 'postgres');
    // Rows of the kind a business database holds: ids, names, emails, amounts, timestamps,
    // JSON and free text. About 200 bytes of SQL a row; gzip -6 takes it to roughly a quarter.
    const rows = Math.round(gb * 5_200_000);
    log(`generating ${rows} rows (~${gb} GB of SQL)...`);
    const t0 = Date.now();
    psql(`CREATE TABLE orders (id bigint PRIMARY KEY, customer text, email text, amount numeric(12,2), status text, created_at timestamptz, meta jsonb, note text)`);
    const chunk = 1_000_000;
    for (let i = 0; i < rows; i += chunk) {
      psql(`INSERT INTO orders SELECT g, 'customer ' || (g % 50000), 'user' || (g % 90000) || '@example.com', (g % 100000) / 100.0,
        (ARRAY['new','paid','shipped','returned'])[1 + g % 4], '2024-01-01'::timestamptz + (g || ' seconds')::interval,
        jsonb_build_object('sku', 'SKU-' || (g % 7919), 'qty', g % 13, 'tag', md5((g % 1000)::text)),
        'order ' || g || ' ' || substr(md5(g::text), 1, 6 + g % 20) || ' thank you for your purchase'
        FROM generate_series(${i + 1}, ${Math.min(rows, i + chunk)}) g`);
    }
    // The realistic shape for restores: a secondary index on the large table, and a dozen medium
    // tables with foreign keys and indexes of their own.
    psql('CREATE INDEX orders_customer ON orders (customer)');
    psql('CREATE INDEX orders_created ON orders (created_at)');
    psql(`CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE, city text, since date)`);
    psql(`INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com', 'city ' || (g % 500), DATE '2020-01-01' + g % 1500 FROM generate_series(1, ${Math.round(gb * 200_000)}) g`);
    const medium = Math.round(gb * 150_000);
    for (let t = 1; t <= 12; t++) {
      psql(`CREATE TABLE m${t} (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), ref bigint, label text, amount numeric(10,2), at timestamptz)`);
      psql(`INSERT INTO m${t} SELECT g, 1 + g % ${Math.round(gb * 200_000)}, g % 1000, 'label ' || md5((g * ${t})::text), (g % 5000) / 10.0, '2024-01-01'::timestamptz + (g || ' minutes')::interval FROM generate_series(1, ${medium}) g`);
      psql(`CREATE INDEX m${t}_customer ON m${t} (customer_id)`);
      psql(`CREATE INDEX m${t}_label ON m${t} (label)`);
    }
    psql('VACUUM ANALYZE');
    log(`generated in ${sec(Date.now() - t0)} s`);

    const keyFile = join(work, 'key.txt');
    execFileSync('node', [BIN, 'keygen', '-o', keyFile]);
    const recipient = readFileSync(keyFile, 'utf8').match(/public key: (\S+)/)[1];
    const haveAge = (() => { try { execFileSync('sh', ['-c', 'command -v age']); return true; } catch { return false; } })();
    const env = { ...process.env, ...s3.env, PGBACKUP_PG_BINDIR: bin, DATABASE_URL: cluster.url('bench') };
    const results = [];
    const row = (what, ms, base, baseName, extra = '') => results.push({ what, s: sec(ms), ratio: base ? (ms / base).toFixed(2) : '', baseName, extra });

    // Plain dump size.
    const plainFile = join(work, 'plain.sql');
    const dumpToFile = await sh(`"${bin}/pg_dump" > "${plainFile}"`, pgenv);
    const sqlBytes = statSync(plainFile).size;
    log(`plain SQL: ${mib(sqlBytes)} MiB`);

    if (only === null || only === 'reader') {
      // The dump reader's throughput against the line scanner it replaced, on the same file
      // (from the page cache), alternating so that both see the same machine.
      const { DumpReader } = await import('../dist/pipeline/dumpreader.js');
      const pass = async (make) => {
        const t = process.hrtime.bigint();
        const sink = new Writable({ highWaterMark: 1 << 20, write: (_c, _e, cb) => cb() });
        const stage = make();
        await pipeline(createReadStream(plainFile, { highWaterMark: 1 << 20 }), stage, sink);
        return { ms: Number(process.hrtime.bigint() - t) / 1e6, rows: stage.tables.reduce((a, x) => a + x.rows, 0) };
      };
      const best = { line: Infinity, reader: Infinity, restore: Infinity };
      for (let round = 0; round < 3; round++) {
        best.line = Math.min(best.line, (await pass(() => new SqlScan())).ms);
        best.reader = Math.min(best.reader, (await pass(() => new DumpReader({ requireComplete: true }))).ms);
        // As restore runs it: rewrites asked of every statement, clean section and blob transaction checked.
        best.restore = Math.min(best.restore, (await pass(() => new DumpReader({ requireComplete: true, skipClean: true, dropBlobTransaction: true, rewrite: () => undefined }))).ms);
      }
      const rate = (ms) => `${(sqlBytes / 1024 / 1024 / (ms / 1000)).toFixed(0)} MiB/s`;
      row('line scanner (0.1) over plain.sql', best.line, 0, '', rate(best.line));
      row('dump reader over plain.sql (backup)', best.reader, best.line, 'line scanner', rate(best.reader));
      row('dump reader over plain.sql (restore rewrites)', best.restore, best.line, 'line scanner', rate(best.restore));
    }
    if (only === null || only === 'backup') {
      const devnull = await sh(`"${bin}/pg_dump" > /dev/null`, pgenv);
      row('pg_dump > /dev/null', devnull.ms, 0, '');
      // The goal for a backup: no slower than the parallel-gzip limit, pg_dump through
      // pigz on every core into /dev/null (less work than ours: no encryption, no file).
      const haveP = (() => { try { execFileSync('sh', ['-c', 'command -v pigz']); return true; } catch { return false; } })();
      if (!haveP) throw new Error('pigz is missing (apt-get install pigz): the backup baseline needs it');
      const cores = execFileSync('nproc').toString().trim();
      const pigz = await sh(`"${bin}/pg_dump" | pigz -p ${cores} -6 > /dev/null`, pgenv);
      row(`pg_dump | pigz -p ${cores} -6 > /dev/null`, pigz.ms, devnull.ms, 'pg_dump');
      let shell = null;
      let shellSize = 0;
      if (haveAge) {
        const out = join(work, 'shell.sql.gz.age');
        shell = await sh(`"${bin}/pg_dump" | gzip -6 | age -r ${recipient} > "${out}"`, pgenv);
        shellSize = statSync(out).size;
        rmSync(out);
        row('pg_dump | gzip -6 | age -r KEY > file', shell.ms, devnull.ms, 'pg_dump', `${mib(shellSize)} MiB`);
      }
      const folder = join(work, 'backups');
      const f = await timed(process.execPath, [BIN, 'backup', '--to', folder, '--recipient', recipient, '--log-format', 'json', ...extraBackupArgs], { env });
      const fkey = f.stdout.trim();
      const fsize = statSync(join(folder, fkey)).size;
      row('pgbackup backup -> folder', f.ms, pigz.ms, 'pigz', `${mib(fsize)} MiB (${shellSize ? ((fsize / shellSize - 1) * 100).toFixed(1) + '% vs shell' : ''}), ${shell ? (f.ms / shell.ms).toFixed(2) + 'x shell, ' : ''}${(f.ms / devnull.ms).toFixed(2)}x pg_dump, peak RSS ${mib(f.peak)} MiB`);
      const s = await timed(process.execPath, [BIN, 'backup', '--to', 's3://bench/b/', '--recipient', recipient, '--log-format', 'json', ...extraBackupArgs], { env });
      row('pgbackup backup -> S3 (s3rver)', s.ms, shell?.ms, 'shell', `${(s.ms / devnull.ms).toFixed(2)}x pg_dump, peak RSS ${mib(s.peak)} MiB`);
      writeFileSync(join(work, 'keys.json'), JSON.stringify({ folder, fkey, s3key: s.stdout.trim() }));
    }
    const storedKeys = async () => {
      try {
        return JSON.parse(readFileSync(join(work, 'keys.json'), 'utf8'));
      } catch {
        const folder = join(work, 'backups');
        const f = await timed(process.execPath, [BIN, 'backup', '--to', folder, '--recipient', recipient], { env });
        const s = await timed(process.execPath, [BIN, 'backup', '--to', 's3://bench/b/', '--recipient', recipient], { env });
        const keys = { folder, fkey: f.stdout.trim(), s3key: s.stdout.trim() };
        writeFileSync(join(work, 'keys.json'), JSON.stringify(keys));
        return keys;
      }
    };
    if (only === null || only === 'selective') {
      // Selective restore of one medium table (its definition, data, indexes; its foreign key to
      // customers is left out in a new database) against the least any restore must do: read the
      // whole stored object through decryption and gunzip.
      const keys = await storedKeys();
      const stored = join(keys.folder, keys.fkey);
      let floor;
      if (haveAge) {
        floor = await sh(`age -d -i "${keyFile}" < "${stored}" | gunzip > /dev/null`, pgenv);
        row('age -d < stored | gunzip > /dev/null', floor.ms, 0, '');
      }
      const fetch = await sh(`"${process.execPath}" "${BIN}" fetch "${keys.fkey}" --from "${keys.folder}" --identity "${keyFile}" -o - --log-format json > /dev/null`, env);
      row('pgbackup fetch -o - > /dev/null (decrypt, gunzip, checks)', fetch.ms, floor?.ms, floor ? 'age + gunzip' : '');
      const sel = await timed(process.execPath, [BIN, 'restore', keys.fkey, '--from', keys.folder, '--to', cluster.url('rsel'), '--create', '--table', 'public.m1', '--identity', keyFile, '--log-format', 'json'], { env });
      row('pgbackup restore --table public.m1 (new database)', sel.ms, floor?.ms ?? fetch.ms, floor ? 'age + gunzip' : 'fetch', `${(sel.ms / fetch.ms).toFixed(2)}x fetch, peak RSS ${mib(sel.peak)} MiB`);
      psql('DROP DATABASE rsel', 'postgres');
    }
    if (only === null || only === 'restore') {
      const keys = await storedKeys();
      // Every target is created beforehand, outside the timings: only the load is compared.
      for (const d of ['r0', 'r1', 'r2', 'rc']) psql(`CREATE DATABASE ${d}`, 'postgres');
      const base = await sh(`"${bin}/psql" -X -q -1 -v ON_ERROR_STOP=1 -f "${plainFile}" -d r0 > /dev/null`, pgenv);
      row('psql -1 -v ON_ERROR_STOP=1 -f plain.sql', base.ms, 0, '');
      const customFile = join(work, 'custom.dump');
      execFileSync(join(bin, 'pg_dump'), ['--format=custom', '-f', customFile], { env: pgenv });
      const pgr = await sh(`"${bin}/pg_restore" -j 2 -d rc "${customFile}"`, pgenv);
      row('pg_restore -j 2 (custom format, unencrypted file)', pgr.ms, base.ms, 'psql -f');
      rmSync(customFile);
      // --jobs: into a database the restore creates (--create), like pg_restore into an empty one.
      for (const jobs of [2, 3, 4]) {
        const r = await timed(process.execPath, [BIN, 'restore', keys.fkey, '--from', keys.folder, '--to', cluster.url(`rj${jobs}`), '--create', '--jobs', String(jobs), '--identity', keyFile, '--log-format', 'json'], { env });
        row(`pgbackup restore --jobs ${jobs} <- folder`, r.ms, base.ms, 'psql -f', `${(r.ms / pgr.ms).toFixed(2)}x pg_restore -j 2, peak RSS ${mib(r.peak)} MiB`);
        psql(`DROP DATABASE rj${jobs}`, 'postgres');
      }
      const rf = await timed(process.execPath, [BIN, 'restore', keys.fkey, '--from', keys.folder, '--to', cluster.url('r1'), '--jobs', '1', '--identity', keyFile, '--log-format', 'json'], { env });
      row('pgbackup restore --jobs 1 <- folder', rf.ms, base.ms, 'psql -f', `peak RSS ${mib(rf.peak)} MiB`);
      const rs = await timed(process.execPath, [BIN, 'restore', keys.s3key.slice(2), '--from', 's3://bench/b/', '--to', cluster.url('r2'), '--jobs', '1', '--identity', keyFile, '--log-format', 'json'], { env });
      row('pgbackup restore --jobs 1 <- S3 (s3rver)', rs.ms, base.ms, 'psql -f', `peak RSS ${mib(rs.peak)} MiB`);
    }
    if (only === null || only === 'bigtable') {
      // The second restore shape: a database that is one big table with a primary key
      // (the large table of the bench database, copied alone into its own database).
      psql('CREATE DATABASE big', 'postgres');
      await sh(`"${bin}/pg_dump" -t public.orders -d bench | "${bin}/psql" -X -q -v ON_ERROR_STOP=1 -d big > /dev/null`, pgenv);
      psql('DROP INDEX orders_customer; DROP INDEX orders_created', 'big');
      psql('VACUUM ANALYZE', 'big');
      const bigPlain = join(work, 'big.sql');
      execFileSync(join(bin, 'pg_dump'), ['-d', 'big', '-f', bigPlain], { env: pgenv });
      log(`one big table: ${mib(statSync(bigPlain).size)} MiB of SQL`);
      const folder = join(work, 'big-backups');
      const b = await timed(process.execPath, [BIN, 'backup', '--database', cluster.url('big'), '--to', folder, '--recipient', recipient, '--log-format', 'json'], { env });
      const key = b.stdout.trim();
      for (const d of ['b0', 'b1']) psql(`CREATE DATABASE ${d}`, 'postgres');
      const base = await sh(`"${bin}/psql" -X -q -1 -v ON_ERROR_STOP=1 -f "${bigPlain}" -d b0 > /dev/null`, pgenv);
      row('one big table: psql -1 -v ON_ERROR_STOP=1 -f plain.sql', base.ms, 0, '');
      const r1 = await timed(process.execPath, [BIN, 'restore', key, '--from', folder, '--to', cluster.url('b1'), '--jobs', '1', '--identity', keyFile, '--log-format', 'json'], { env });
      row('one big table: pgbackup restore --jobs 1 <- folder', r1.ms, base.ms, 'psql -f', `peak RSS ${mib(r1.peak)} MiB`);
      const r2 = await timed(process.execPath, [BIN, 'restore', key, '--from', folder, '--to', cluster.url('b2'), '--create', '--jobs', '2', '--identity', keyFile, '--log-format', 'json'], { env });
      row('one big table: pgbackup restore --jobs 2 <- folder', r2.ms, base.ms, 'psql -f', `peak RSS ${mib(r2.peak)} MiB`);
      for (const d of ['b0', 'b1', 'b2', 'big']) psql(`DROP DATABASE ${d}`, 'postgres');
      rmSync(bigPlain);
    }
    void dumpToFile;
    const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
    const lines = [
      `${mib(sqlBytes)} MiB of SQL; ${process.versions.node ? 'Node ' + process.versions.node : ''}; ${cluster.version}; ${execFileSync('nproc').toString().trim()} cores (${cpu})`,
      '',
      '| run | wall s | ratio | against | notes |',
      '|---|---:|---:|---|---|',
      ...results.map((r) => `| ${r.what.replace(/\|/g, '\\|')} | ${r.s} | ${r.ratio} | ${r.baseName} | ${r.extra} |`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await stop();
  }
}

main().catch((e) => {
  log(e.stack ?? String(e));
  process.exit(1);
});
