/**
 * `pgbackup prune`: tier retention for folder targets (S3 buckets have lifecycle rules), plus the
 * clean-up of incomplete dumps, partial files and stray sidecars. Dry run unless `apply`.
 *
 * Safe against a backup running at the same time. A backup writes, in this order: a hidden
 * partial file (written to continuously), the dump (a hard link of the finished partial file,
 * keeping its last write time), then the manifest, seconds later. So:
 * - a partial file, an incomplete dump or a stray sidecar is only touched once nothing wrote to
 *   it for a day (model/retention.ts GRACE_MS), and is checked again just before it goes;
 * - a complete backup is deleted dump first, then its manifest, then its verify record. Deleting
 *   the manifest first would, if prune were interrupted, leave a dump without a manifest: the
 *   state of a backup still running or one that failed, which `list` and monitoring report as a
 *   failure and which must be left alone for a day. The other way round leaves at worst a
 *   manifest without a dump, a state no backup ever produces (the dump is always written before
 *   its manifest), which nothing reads as a backup and the next prune removes.
 * - only folders of days (months, years) that ended more than two days ago are removed, and only
 *   when empty: a backup creates today's folder, never a past one.
 */
import { stat } from 'node:fs/promises';
import type { Context } from '../support/context.js';
import { formatBytes } from '../support/units.js';
import { dbPrefix, isoSeconds, manifestKey, parseKey, sidecarOf, verifiedKey } from '../model/keys.js';
import { manifestKind } from '../model/manifest.js';
import { DAY_MS, GRACE_MS, planPrune, type PruneBackup, type PruneDecision, type PruneLoose } from '../model/retention.js';
import type { PruneConfig } from '../config/config.js';
import { FolderStorage } from '../storage/index.js';
import { entryManifest } from './catalog.js';
import { StorageError, messageOf } from '../support/errors.js';


/** What the folder holds, as prune sees it. */
async function survey(storage: FolderStorage, prefix: string, database: string | undefined, signal: AbortSignal): Promise<{ backups: PruneBackup[]; loose: PruneLoose[] }> {
  const dumps = new Map<string, { size: number; mtime: Date }>();
  const sidecars = new Map<string, { key: string; size: number; mtime: Date; what: 'manifest' | 'verified' }[]>();
  for await (const o of storage.list(prefix, signal)) {
    const side = sidecarOf(o.key);
    if (side) {
      const p = parseKey(side.dump)!;
      if (database !== undefined && p.database !== database) continue;
      const list = sidecars.get(side.dump) ?? [];
      list.push({ key: o.key, size: o.size, mtime: o.lastModified, what: side.what });
      sidecars.set(side.dump, list);
      continue;
    }
    const p = parseKey(o.key);
    if (!p || (database !== undefined && p.database !== database)) continue;
    dumps.set(o.key, { size: o.size, mtime: o.lastModified });
  }
  const backups: PruneBackup[] = [];
  const loose: PruneLoose[] = [];
  for (const [key, d] of dumps) {
    const p = parseKey(key)!;
    const sides = sidecars.get(key) ?? [];
    const man = sides.find((s) => s.what === 'manifest');
    const b: PruneBackup = {
      key,
      database: p.database,
      time: p.time,
      mtime: d.mtime,
      size: d.size,
      complete: Boolean(man),
      // Deleted in this order after the dump: the manifest, then the verify record.
      sidecars: [manifestKey(key), verifiedKey(key)].filter((k) => sides.some((s) => s.key === k)),
    };
    if (man) {
      const r = await entryManifest(storage, { ...p, size: d.size, lastModified: d.mtime, complete: true, manifestSize: man.size }, signal);
      b.manifest = 'manifest' in r ? { tier: r.manifest.tier, kind: manifestKind(r.manifest) } : { error: r.error };
    }
    backups.push(b);
  }
  for (const [dump, sides] of sidecars) {
    if (dumps.has(dump)) continue;
    for (const s of sides) loose.push({ key: s.key, mtime: s.mtime, size: s.size, what: 'orphan' });
  }
  // A database's partial files live in its folders: the prefix limits the walk.
  for await (const o of storage.partials(prefix, signal)) {
    loose.push({ key: o.key, mtime: o.lastModified, size: o.size, what: 'partial' });
  }
  return { backups, loose };
}

/** Just before a delete: is what a running backup may own still idle (and still incomplete)? */
async function stillSafe(storage: FolderStorage, d: PruneDecision, now: number): Promise<string | null> {
  if (d.what === 'backup') return null;
  const h = await storage.head(d.key);
  if (d.what === 'partial' || d.what === 'incomplete') {
    if (!h) return 'gone';
    if (now - h.lastModified.getTime() <= GRACE_MS) return 'written to since it was listed';
  }
  if (d.what === 'incomplete' && (await storage.head(manifestKey(d.key)))) return 'its manifest appeared';
  if (d.what === 'orphan') {
    if (!h || now - h.lastModified.getTime() <= GRACE_MS) return 'changed since it was listed';
    const side = sidecarOf(d.key);
    if (side && (await storage.head(side.dump))) return 'its dump is there';
  }
  return null;
}

/** The end of the period a folder of the key layout names (db/YYYY[/MM[/DD]]), or null. */
export function folderPeriodEnd(folder: string): Date | null {
  const m = /\/(\d{4})(?:\/(\d{2})(?:\/(\d{2}))?)?$/.exec(folder);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), m[2] ? Number(m[2]) - 1 : undefined, m[3] ? Number(m[3]) : undefined];
  if (d !== undefined) return new Date(Date.UTC(y, mo, d + 1));
  if (mo !== undefined) return new Date(Date.UTC(y, mo + 1, 1));
  return new Date(Date.UTC(y + 1, 0, 1));
}

export async function prune(ctx: Context, cfg: Readonly<PruneConfig>): Promise<void> {
  const storage = new FolderStorage(cfg.path);
  // A folder that is not there is a typo or an unmounted volume, not "nothing to prune": a cron
  // job saying so every night would hide it until the disk fills.
  await stat(storage.root).catch((e: NodeJS.ErrnoException) => {
    throw new StorageError('NOT_FOUND', `cannot prune ${storage.root}: ${e.code === 'ENOENT' ? 'no such folder' : messageOf(e)} (check --from / PGBACKUP_TARGET); nothing was deleted`, { cause: e });
  });
  const prefix = cfg.database !== undefined ? dbPrefix('', cfg.database) : '';
  const now = new Date();
  const { backups, loose } = await survey(storage, prefix, cfg.database, ctx.signal);
  const plan = planPrune(backups, loose, cfg.retention, now);
  const deleted: string[] = [];
  const skipped: { key: string; why: string }[] = [];
  if (cfg.apply) {
    const folders = new Set<string>();
    for (const d of plan) {
      if (d.action !== 'delete') continue;
      const why = await stillSafe(storage, d, Date.now());
      if (why) {
        skipped.push({ key: d.key, why });
        continue;
      }
      for (const f of d.files) {
        ctx.signal.throwIfAborted();
        try {
          if (await storage.remove(f)) deleted.push(f);
        } catch (e) {
          throw new StorageError('PRUNE', `prune stopped at ${f} (${deleted.length} file(s) deleted before it): ${messageOf(e)}`, { cause: e });
        }
      }
      folders.add(d.key.slice(0, d.key.lastIndexOf('/')));
    }
    // Empty folders of periods long over: day, then month, then year.
    for (const start of folders) {
      for (let f = start; f.includes('/'); f = f.slice(0, f.lastIndexOf('/'))) {
        const end = folderPeriodEnd(f);
        if (!end || now.getTime() - end.getTime() < 2 * DAY_MS) break;
        if (!(await storage.removeEmptyFolder(f))) break;
      }
    }
  }
  const del = plan.filter((d) => d.action === 'delete' && !skipped.some((s) => s.key === d.key));
  const keep = plan.filter((d) => d.action === 'keep');
  const count = (w: PruneDecision['what']) => del.filter((d) => d.what === w).length;
  const summary = {
    backups: count('backup'),
    incomplete: count('incomplete'),
    partials: count('partial'),
    orphans: count('orphan'),
    bytes: del.reduce((s, d) => s + d.size, 0),
    kept: keep.length,
  };
  if (cfg.json) {
    ctx.out(
      JSON.stringify(
        { target: storage.description, applied: cfg.apply, now: isoSeconds(now), retentionDays: cfg.retention, summary, decisions: plan, ...(skipped.length ? { skipped } : {}), ...(cfg.apply ? { deleted } : {}) },
        null,
        2,
      ) + '\n',
    );
  } else {
    if (plan.length === 0) ctx.out(`nothing to prune in ${storage.description}${cfg.database !== undefined ? ` for database "${cfg.database}"` : ''}\n`);
    const verb = cfg.apply ? 'DELETED' : 'DELETE';
    for (const d of plan) {
      const s = skipped.find((x) => x.key === d.key);
      const act = d.action === 'keep' ? 'KEEP' : s ? 'SKIPPED' : verb;
      const extra = d.files.length > 1 ? ` (+ ${d.files.slice(1).map((f) => f.slice(d.key.length)).join(', ')})` : '';
      ctx.out(`${act.padEnd(8)} ${d.key}${extra}\n         ${d.reason}${s ? `; not deleted: ${s.why}` : ''}\n`);
    }
    const parts = [`${summary.backups} backup(s) past their retention`, `${summary.incomplete} incomplete dump(s)`, `${summary.partials} partial file(s)`, `${summary.orphans} stray sidecar(s)`];
    ctx.out(
      cfg.apply
        ? `deleted ${parts.join(', ')} (${formatBytes(summary.bytes)}); kept ${summary.kept}\n`
        : `dry run: would delete ${parts.join(', ')} (${formatBytes(summary.bytes)}); would keep ${summary.kept}. Nothing was deleted: run with --apply to delete.\n`,
    );
  }
  ctx.log.info({ applied: cfg.apply, ...summary, ...(skipped.length ? { skipped: skipped.length } : {}) }, cfg.apply ? 'prune done' : 'prune dry run done');
}
