// A real S3 implementation for the tests: Ceph's RADOS Gateway (RGW) on a throwaway
// single-node Ceph cluster (one monitor, one OSD keeping its data in memory, one radosgw),
// under a temp folder, on free ports of 127.0.0.1, without cephx.
//
//   import { startRgw } from './rgw.mjs';
//   const rgw = await startRgw({ buckets: ['backups'] });
//   rgw.endpoint   // http://127.0.0.1:PORT (path-style)
//   rgw.env        // AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ... for the CLI (like s3.mjs's env)
//   rgw.accessKey, rgw.secretKey
//   rgw.admin(['lc', 'process'])  // runs radosgw-admin against this cluster, returns its stdout
//   await rgw.stop()              // stops the daemons by process id, removes the temp folder
//
// The integration global setup starts one for the whole suite (inject('rgw') in the tests,
// see test/integration/helpers.ts). A lifecycle "day" lasts `lcDayS` seconds
// (rgw_lc_debug_interval); `radosgw-admin lc process` forces a lifecycle pass.
// Needs the Debian packages ceph-mon, ceph-osd, radosgw and ceph-common (.ci/run installs them);
// without them startRgw fails saying so.
//
// If the process that started the cluster dies without stop(), a watchdog child (it reads
// its stdin until the parent goes away) kills the daemons and removes the folder.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID, randomBytes } from 'node:crypto';
import { freePort } from './pg.mjs';

const TOOLS = ['monmaptool', 'ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph'];

function missingTools() {
  return TOOLS.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

function run(cmd, args, { timeout = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start the cluster. Options: buckets to create, lcDayS (seconds a lifecycle day lasts, 5).
 * Resolves once the gateway answers S3 requests with the user's keys.
 */
export async function startRgw({ buckets = [], lcDayS = 5 } = {}) {
  const missing = missingTools();
  if (missing.length) {
    throw new Error(`the RGW tests need Ceph (${missing.join(', ')} not found): install the Debian packages ceph-mon ceph-osd radosgw ceph-common (.ci/run installs them)`);
  }
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'pgbackup-rgw-'));
  const children = [];
  const watchdog = spawn(
    process.execPath,
    [
      '-e',
      `let pids = []; process.stdin.on('data', (d) => { for (const l of String(d).split('\\n')) if (/^\\d+$/.test(l)) pids.push(Number(l)); });
       process.stdin.on('end', () => { for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch {} }
         setTimeout(() => { require('fs').rmSync(${JSON.stringify(dir)}, { recursive: true, force: true }); process.exit(0); }, 500); });`,
    ],
    { stdio: ['pipe', 'ignore', 'ignore'] },
  );
  watchdog.unref();
  const stop = async () => {
    // Gateway first, then the OSD, then the monitor; SIGKILL after 10 s.
    for (const c of [...children].reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await exited;
      }
    }
    watchdog.stdin.end();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const [monPort, rgwPort] = [await freePort(), await freePort()];
    const fsid = randomUUID();
    const conf = join(dir, 'ceph.conf');
    for (const d of ['run', 'log', 'mon.a', 'osd.0']) mkdirSync(join(dir, d));
    writeFileSync(
      conf,
      `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim allowed = false
# Without cephx no secure mode: radosgw asks for it towards the monitor by default.
ms mon client mode = crc
ms client mode = crc
ms bind ipv4 = true
ms bind ipv6 = false
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
keyring = /dev/null
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg autoscale mode = off
osd pool default pg num = 1
osd pool default pgp num = 1
osd crush chooseleaf type = 0
mon data avail warn = 1
mon data avail crit = 0
[mon]
mon data = ${dir}/mon.$id
mon cluster log file = ${dir}/log/cluster.log
# Commit map changes at once (1 s by default): RGW creates its pools one by one at start.
paxos propose interval = 0.01
paxos min wait = 0.001
[osd]
osd data = ${dir}/osd.$id
osd objectstore = memstore
memstore device bytes = ${4 * 2 ** 30}
osd max object name len = 256
osd max object namespace len = 64
[client]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw thread pool size = 64
rgw lc debug interval = ${lcDayS}
rgw lifecycle work time = 00:00-23:59
rgw enable usage log = false
`,
    );
    const c = ['-c', conf];
    let stopping = false;
    let died = null;
    const daemon = (cmd, args) => {
      const child = spawn(cmd, [...c, '-f', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d) => (err = (err + d).slice(-1500)));
      child.once('exit', (code, sig) => {
        if (!stopping) died = new Error(`${cmd} exited (${code ?? sig}) while the RGW cluster was running: ${err.trim()} (logs in ${dir}/log)`);
      });
      children.push(child);
      watchdog.stdin.write(`${child.pid}\n`);
      return child;
    };

    await run('monmaptool', ['--create', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', fsid, join(dir, 'monmap')]);
    await run('ceph-mon', [...c, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap')]);
    daemon('ceph-mon', ['-i', 'a']);
    const osdId = (await run('ceph', [...c, '--connect-timeout', '30', 'osd', 'create'])).trim();
    if (osdId !== '0') throw new Error(`ceph osd create gave id ${osdId}, expected 0`);
    await run('ceph-osd', [...c, '-i', '0', '--mkfs']);
    daemon('ceph-osd', ['-i', '0']);
    daemon('radosgw', ['-n', 'client.rgw']);

    const endpoint = `http://127.0.0.1:${rgwPort}`;
    for (;;) {
      if (died) throw died;
      if (Date.now() - t0 > 120_000) throw new Error(`RGW did not answer on ${endpoint} within 120 s (logs in ${dir}/log)`);
      const ok = await fetch(endpoint, { signal: AbortSignal.timeout(2000) }).then(
        () => true,
        () => false,
      );
      if (ok) break;
      await sleep(250);
    }
    const admin = (args, opts) => run('radosgw-admin', [...c, ...args], opts);
    const accessKey = `RGW${randomBytes(8).toString('hex').toUpperCase()}`;
    const secretKey = randomBytes(24).toString('base64url');
    await admin(['user', 'create', '--uid=pgbackup', '--display-name=pgbackup tests', `--access-key=${accessKey}`, `--secret-key=${secretKey}`]);

    const env = {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: accessKey,
      AWS_SECRET_ACCESS_KEY: secretKey,
      PGBACKUP_S3_FORCE_PATH_STYLE: 'true',
    };
    if (buckets.length) {
      const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
      const client = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      for (const Bucket of buckets) await client.send(new CreateBucketCommand({ Bucket }));
      client.destroy();
    }
    const rss = () =>
      children.reduce((sum, ch) => {
        try {
          return sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${ch.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
        } catch {
          return sum;
        }
      }, 0);
    return {
      endpoint,
      port: rgwPort,
      env,
      accessKey,
      secretKey,
      dir,
      conf,
      lcDayS,
      startMs: Date.now() - t0,
      pids: children.map((ch) => ch.pid),
      /** radosgw-admin with this cluster's config; resolves to its stdout. */
      admin,
      /** Resident memory of the three daemons, in bytes. */
      rss,
      /** The daemon that died, if one did (an Error), else null. */
      health: () => died,
      async stop() {
        stopping = true;
        await stop();
      },
    };
  } catch (e) {
    const logs = existsSync(join(dir, 'log')) ? tailLogs(dir) : '';
    await stop().catch(() => {});
    throw new Error(`${e.message}${logs}`, { cause: e });
  }
}

function tailLogs(dir) {
  let out = '';
  for (const f of ['mon.a.log', 'osd.0.log', 'client.rgw.log']) {
    try {
      out += `\n--- ${f} (last lines)\n` + readFileSync(join(dir, 'log', f), 'utf8').split('\n').slice(-15).join('\n');
    } catch {}
  }
  return out;
}
