/**
 * `pgbackup verify`: read backups back and prove them whole, without a database:
 * sha256 and size of the stored bytes against the manifest, every age chunk authenticated,
 * every gzip member's CRC and length, the dump's completion marker, and the rows of every
 * COPY block against the manifest. `--restore-into` also restores into a scratch database.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { VerifyConfig } from '../config/config.js';
import { type Context, toolVersion } from '../support/context.js';
import { formatDuration } from '../support/units.js';
import { CryptoError, RestoreError, StorageError, UsageError, VerifyError, InterruptedError, classify, classifyData, isPgBackupError, classOf, exitCodeOfClass, messageOf, worseClass, type ErrorClass } from '../support/errors.js';
import { listBackups, selectBackup } from './catalog.js';
import { dbPrefix, verifiedKey } from '../model/keys.js';
import { openStorage } from '../storage/index.js';
import { displayKey, locate, openBackup, readManifest, type Located } from './open.js';
import { DumpReader } from '../pipeline/dumpreader.js';
import { compareCounts, decryptSecrets, loadInto, loadSecrets, type LoadedSecrets } from './restore.js';
import { ADMIN_TIMEOUT_MS, dropDatabase } from '../pg/db.js';
import { createScratchLike } from './restore-props.js';
import { withDatabase, type ConnInfo } from '../pg/conn.js';
import { MetricsRun, targetLabel } from './metrics.js';
import { manifestKind, rowCountDifferences, type Manifest, type VerifyRecord } from '../model/manifest.js';

export interface Check {
  check: string;
  ok: boolean;
  detail: string;
}

export interface Report {
  key: string;
  database?: string;
  /** The exit code of the worst finding (0: none), shown in --json. */
  exitCode: number;
  checks: Check[];
  restoreMs?: number;
  /** The scratch database --restore-into used (and dropped), shown in --json. */
  scratchDatabase?: string;
  /** The class of the worst finding (not printed). */
  worst?: ErrorClass | null;
  /** The verify record written beside the manifest (not printed). */
  record?: VerifyRecord | undefined;
}

export async function verifyOne(ctx: Context, located: Located, secrets: LoadedSecrets, restoreInto?: ConnInfo): Promise<Report> {
  const t0 = Date.now();
  const checks: Check[] = [];
  // The worst finding so far, ranked by error class (support/errors.ts).
  let worst: ErrorClass | null = null;
  const fail = (check: string, detail: string, cls: ErrorClass) => {
    checks.push({ check, ok: false, detail });
    worst = worseClass(worst, cls);
  };
  const pass = (check: string, detail: string) => checks.push({ check, ok: true, detail });

  const { manifest, problem } = await readManifest(ctx, located.storage, located.key);
  if (manifest) pass('manifest', `present (${manifest.tables.length} tables, tier ${manifest.tier})`);
  else fail('manifest', problem ?? 'missing', VerifyError);

  const scan = new DumpReader();
  let readOk = false;
  let opened: Awaited<ReturnType<typeof openBackup>> | undefined;
  try {
    opened = await openBackup(ctx, located, decryptSecrets(secrets), 'verify');
    const sink = new Writable({ highWaterMark: 1 << 20, write: (_c, _e, cb) => cb() });
    await pipeline([...opened.stages, scan, sink], { signal: ctx.signal });
    readOk = true;
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (e instanceof UsageError || e instanceof InterruptedError) throw e;
    // The same classification as restore and fetch: a damaged gzip stream is damaged data.
    const c = classify(e);
    const gzip = classifyData(e) !== e;
    if (gzip) fail('gzip', `gzip stream is damaged: ${messageOf(e)}`, classOf(c));
    else if (c instanceof CryptoError) fail('age', c.message, CryptoError);
    else fail('read', c.message, classOf(c));
  }
  if (readOk && opened) {
    if (opened.chain.age) pass('age', 'header MAC and every payload chunk authenticated');
    if (opened.chain.gzip) pass('gzip', 'every member\'s CRC-32 and length match');
    if (manifest) {
      const sha = opened.measure.digest();
      const bytes = opened.measure.bytes;
      const rekeyed = manifest.rekey && sha === manifest.rekey.sha256 && bytes === manifest.rekey.stored;
      if (rekeyed) {
        pass('sha256', `${sha} (the re-keyed object of an interrupted key rotation: run pgbackup rekey again to finish it)`);
        pass('size', `${bytes} bytes stored`);
      } else {
        if (sha === manifest.sha256) pass('sha256', sha);
        else fail('sha256', `stored bytes hash to ${sha}, the manifest says ${manifest.sha256}`, VerifyError);
        if (bytes === manifest.sizes.stored) pass('size', `${bytes} bytes stored`);
        else fail('size', `${bytes} bytes stored, the manifest says ${manifest.sizes.stored}`, VerifyError);
      }
      if (scan.bytes !== manifest.sizes.sql) fail('sql size', `${scan.bytes} bytes of SQL, the manifest says ${manifest.sizes.sql}`, VerifyError);
    }
    if (scan.complete) pass('completion marker', "the dump ends with pg_dump's completion marker");
    else fail('completion marker', "the dump does not end with pg_dump's completion marker: it was cut short", VerifyError);
    if (manifest) {
      const { differ, extra } = rowCountDifferences(manifest, scan.tables);
      const diffs = [...differ, ...extra];
      if (diffs.length) fail('row counts', diffs.join('; '), VerifyError);
      else pass('row counts', `${scan.tables.length} tables, ${scan.tables.reduce((s, t) => s + t.rows, 0)} rows as the manifest says`);
    }
  }
  const report: Report = { key: located.display, database: manifest?.database, exitCode: 0, checks };
  if (restoreInto && readOk) await restoreCheck(ctx, located, secrets, restoreInto, manifest, scan, report, (c, d, x) => (x ? fail(c, d, x) : pass(c, d)));
  report.worst = worst;
  report.exitCode = exitCodeOfClass(worst);
  if (manifest) report.record = await recordVerify(ctx, located, manifest, report, checks.some((c) => c.check === 'restore' && c.ok), t0);
  return report;
}

/**
 * Write the outcome beside the manifest as `{key}.verified.json` (status reads it). Tagged with
 * the backup's tier on S3, so lifecycle expires it with the dump. A failure to write it (a
 * verifier that may only read) is a warning: the verification itself stands.
 */
async function recordVerify(ctx: Context, located: Located, manifest: Manifest, report: Report, restored: boolean, t0: number): Promise<VerifyRecord | undefined> {
  const record: VerifyRecord = {
    format: 1,
    key: manifest.key,
    database: manifest.database,
    kind: manifestKind(manifest),
    tier: manifest.tier,
    verifiedAt: new Date().toISOString(),
    ok: report.exitCode === 0,
    exitCode: report.exitCode,
    restored,
    durationMs: Date.now() - t0,
    checks: report.checks,
    tool: { name: 'pgbackup', version: toolVersion() },
  };
  try {
    await located.storage.putBytes(verifiedKey(located.key), Buffer.from(JSON.stringify(record, null, 2) + '\n'), {
      signal: ctx.signal,
      contentType: 'application/json',
      tags: { tier: manifest.tier },
    });
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    ctx.log.warn(
      { key: located.display, err: messageOf(e) },
      `could not record the verification beside the manifest (${verifiedKey(located.key)}); status will not show it. On S3 the verifier needs s3:PutObject and s3:PutObjectTagging on *.verified.json`,
    );
    return undefined;
  }
  return record;
}

/** Restore into a scratch database that we create and always drop. */
async function restoreCheck(
  ctx: Context,
  located: Located,
  secrets: LoadedSecrets,
  server: ConnInfo,
  manifest: Manifest | null,
  scan: DumpReader,
  report: Report,
  note: (check: string, detail: string, cls?: ErrorClass) => void,
): Promise<void> {
  const scratch = `pgbackup_verify_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = server.database ? server : withDatabase(server, 'postgres');
  report.scratchDatabase = scratch;
  try {
    // Like the source (encoding, locale): a SQL_ASCII or LATIN1 dump does not load into UTF8 as it is.
    await createScratchLike(ctx, admin, scratch, manifest?.databaseProperties);
  } catch (e) {
    note('restore', `cannot create the scratch database: ${messageOf(e)}`, RestoreError);
    return;
  }
  try {
    const dest = withDatabase(server, scratch);
    const res = await loadInto(ctx, located, secrets, dest, {});
    report.restoreMs = res.durationMs;
    const expected = manifest ? manifest.tables : scan.tables;
    const diffs = await compareCounts(ctx, dest, expected);
    if (diffs.length) note('restore', `restored in ${formatDuration(res.durationMs)}, but: ${diffs.join('; ')}`, VerifyError);
    else note('restore', `restored into a scratch database in ${formatDuration(res.durationMs)}; row counts match`);
  } catch (e) {
    if (e instanceof InterruptedError) throw e;
    note('restore', `restore failed: ${messageOf(e)}`, isPgBackupError(e) ? classOf(e) : RestoreError);
  } finally {
    // A fresh signal: the scratch database goes even when we were interrupted.
    await dropDatabase(admin, scratch, AbortSignal.timeout(ADMIN_TIMEOUT_MS)).catch((e) =>
      ctx.log.error({ database: scratch, err: messageOf(e) }, 'could not drop the scratch database; drop it by hand'),
    );
  }
}

async function select(ctx: Context, cfg: VerifyConfig): Promise<Located[]> {
  if (cfg.key) return [await locate(ctx, cfg.target, cfg.key)];
  const storage = openStorage(cfg.target);
  const all = await listBackups(storage, cfg.database !== undefined ? dbPrefix('', cfg.database) : '', ctx.signal, cfg.database);
  if (cfg.latest) {
    // The backup a `restore --latest` would take: full unless --any-kind, unreadable and future-dated ones skipped.
    const { pick, skipped } = await selectBackup(storage, all, { anyKind: cfg.anyKind, signal: ctx.signal, warn: (m) => ctx.log.warn(m) });
    if (!pick) {
      throw new StorageError('NOT_FOUND', `no complete backup${cfg.anyKind ? '' : ' (full)'} of database "${cfg.database}" in ${storage.description}${skipped.length ? `; skipped: ${skipped.join(', ')}` : ''}`);
    }
    const b = pick.entry;
    return [{ storage, key: b.key, display: displayKey(cfg.target, b.key), size: b.size }];
  }
  return all.map((b) => ({ storage, key: b.key, display: displayKey(cfg.target, b.key), size: b.size }));
}

/** `verify`: each selected backup read back (and restored into a scratch database if asked). */
export async function verify(ctx: Context, cfg: Readonly<VerifyConfig>): Promise<void> {
  const metrics = new MetricsRun(cfg.prometheus, 'verify');
  const target = targetLabel(cfg.target);
  try {
    await verifyAll(ctx, cfg, metrics, target);
  } catch (e) {
    // Failures of single backups were counted as they came; this is one of the whole run.
    if (!(e instanceof VerifyRunFailed)) metrics.failure(cfg.database ?? '', target);
    await metrics.write(ctx);
    throw e instanceof VerifyRunFailed ? e.error : e;
  }
  await metrics.write(ctx);
}

/** The run failed for findings already counted per backup. */
class VerifyRunFailed extends Error {
  constructor(readonly error: unknown) {
    super('verify failed');
  }
}

async function verifyAll(ctx: Context, cfg: Readonly<VerifyConfig>, metrics: MetricsRun, target: string): Promise<void> {
  const secrets = await loadSecrets(cfg);
  const targets = await select(ctx, cfg);
  if (targets.length === 0) {
    // Nothing to verify is a failure: an empty or mistyped folder/prefix must not keep a weekly job green.
    throw new StorageError(
      'NOT_FOUND',
      `no backups to verify in ${openStorage(cfg.target).description}${cfg.database !== undefined ? ` for database "${cfg.database}"` : ''}: is the target (--from / PGBACKUP_TARGET) right?`,
    );
  }
  const reports: Report[] = [];
  let worst: ErrorClass | null = null;
  for (const t of targets) {
    let r: Report;
    try {
      r = await verifyOne(ctx, t, secrets, cfg.restoreInto);
    } catch (e) {
      if (e instanceof UsageError || e instanceof InterruptedError || ctx.signal.aborted) throw e;
      const cls = classOf(classify(e));
      r = { key: t.display, exitCode: exitCodeOfClass(cls), worst: cls, checks: [{ check: 'read', ok: false, detail: messageOf(e) }] };
    }
    reports.push(r);
    worst = worseClass(worst, r.worst ?? null);
    const db = r.record?.database ?? r.database ?? cfg.database ?? '';
    if (r.exitCode !== 0) metrics.failure(db, target);
    else if (r.record?.kind === 'full') metrics.verified(db, target, new Date(r.record.verifiedAt));
    if (!cfg.json) {
      ctx.out(`${r.exitCode === 0 ? 'OK  ' : 'FAIL'} ${r.key}\n`);
      for (const c of r.checks) ctx.out(`     ${c.ok ? '✓' : '✗'} ${c.check}: ${c.detail}\n`);
    }
  }
  if (cfg.json) ctx.out(JSON.stringify({ ok: worst === null, exitCode: exitCodeOfClass(worst), backups: reports.map(({ worst: _w, record: _r, ...r }) => r) }, null, 2) + '\n');
  else if (reports.length > 1) {
    const bad = reports.filter((r) => r.exitCode !== 0);
    ctx.out(`\n${reports.length} backup(s) verified: ${reports.length - bad.length} good, ${bad.length} bad\n`);
    for (const r of bad) ctx.out(`  exit ${r.exitCode}  ${r.key}: ${r.checks.filter((c) => !c.ok).map((c) => c.check).join(', ')}\n`);
  }
  if (worst !== null) {
    const bad = reports.filter((r) => r.exitCode !== 0);
    const what = bad.map((r) => `${r.key}: ${r.checks.filter((c) => !c.ok).map((c) => `${c.check} (${c.detail})`).join('; ')}`).join('\n  ');
    const msg = `verification failed for ${bad.length} of ${reports.length} backup(s):\n  ${what}`;
    // The run fails as its worst finding: an error of that class (a mismatch for anything else).
    const w: ErrorClass = worst;
    if (w === CryptoError) throw new VerifyRunFailed(new CryptoError('VERIFY_CRYPTO', msg));
    if (w === StorageError) throw new VerifyRunFailed(new StorageError('VERIFY_READ', msg));
    if (w === RestoreError) throw new VerifyRunFailed(new RestoreError('VERIFY_RESTORE', msg));
    throw new VerifyRunFailed(new VerifyError('VERIFY', msg));
  }
  ctx.log.info({ verified: reports.length }, 'all backups verified');
}
