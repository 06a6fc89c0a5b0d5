/**
 * Retention for folder targets (pure): what `pgbackup prune` deletes and keeps, and why. The
 * same rules as the S3 lifecycle rules (lifecycle.ts): each backup is kept for its tier's days,
 * counted from the time in its key (when the backup started); S3 rounds an expiry up to the next
 * midnight UTC, so a bucket may keep a backup up to a day longer than a folder does.
 *
 * Beyond lifecycle: the newest complete full backup of each database is never deleted, and what
 * a backup running at this moment may own is never touched (see pruneFolder in ops/prune.ts
 * for the order of deletes).
 */
import { formatAge } from '../support/units.js';
import type { Tier } from './keys.js';
import type { BackupKind } from './manifest.js';
import type { RetentionDays } from './lifecycle.js';

export const DAY_MS = 24 * 3600_000;
/**
 * Incomplete dumps, partial files and stray sidecars are left alone until nothing has written
 * to them for this long: a running backup writes its partial file continuously, links the dump
 * and writes its manifest seconds later, so anything written to within a day may be its.
 */
export const GRACE_MS = DAY_MS;

export interface PruneBackup {
  key: string;
  database: string;
  /** The key's time (the backup's start). */
  time: Date;
  /** When the dump file was last written. */
  mtime: Date;
  size: number;
  /** Has a manifest. */
  complete: boolean;
  /** From the manifest; an error when it cannot be read. */
  manifest?: { tier: Tier; kind: BackupKind } | { error: string } | undefined;
  /** Its manifest and verify record that exist. */
  sidecars: string[];
}

export interface PruneLoose {
  key: string;
  mtime: Date;
  size: number;
  /** partial: a hidden temporary file; orphan: a manifest or verify record whose dump is gone. */
  what: 'partial' | 'orphan';
}

export interface PruneDecision {
  key: string;
  database?: string | undefined;
  what: 'backup' | 'incomplete' | 'partial' | 'orphan';
  action: 'delete' | 'keep';
  reason: string;
  /** Every file the decision covers, in the order they are deleted. */
  files: string[];
  size: number;
  tier?: Tier | undefined;
  kind?: BackupKind | undefined;
}

/** `3d`, `5h`, `12m`: an age for reasons. */
export function shortAge(ms: number): string {
  if (ms < 0) return `in the future (${shortAge(-ms)} ahead)`;
  return formatAge(ms);
}

/**
 * Decide every backup, incomplete dump, partial file and stray sidecar. `backups` may come in
 * any order; the result is newest first, then the loose files.
 */
export function planPrune(backups: readonly PruneBackup[], loose: readonly PruneLoose[], days: RetentionDays, now: Date): PruneDecision[] {
  const t = now.getTime();
  const sorted = [...backups].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.key < b.key ? 1 : -1));
  // The newest complete full backup of each database: never deleted, whatever its age.
  const newestFull = new Map<string, string>();
  for (const b of sorted) {
    const m = b.manifest;
    if (b.complete && m && 'kind' in m && m.kind === 'full' && !newestFull.has(b.database)) newestFull.set(b.database, b.key);
  }
  const out: PruneDecision[] = [];
  for (const b of sorted) {
    const base = { key: b.key, database: b.database, size: b.size, files: [b.key, ...b.sidecars] };
    const age = t - b.time.getTime();
    if (!b.complete) {
      // A dump without a manifest: failed, interrupted, or a backup finishing right now.
      const idle = t - Math.max(b.mtime.getTime(), b.time.getTime());
      if (idle > GRACE_MS) out.push({ ...base, what: 'incomplete', action: 'delete', reason: `incomplete (no manifest), last written ${shortAge(idle)} ago` });
      else out.push({ ...base, what: 'incomplete', action: 'keep', reason: `incomplete (no manifest) but written ${shortAge(idle)} ago: may be a backup still running (removed once idle for a day)` });
      continue;
    }
    const m = b.manifest;
    if (!m || 'error' in m) {
      out.push({ ...base, what: 'backup', action: 'keep', reason: `its manifest cannot be read (${m && 'error' in m ? m.error : 'missing'}): tier unknown, kept` });
      continue;
    }
    const d = { ...base, what: 'backup' as const, tier: m.tier, kind: m.kind };
    const label = `${m.kind === 'full' ? '' : `${m.kind} backup, `}${m.tier}, ${shortAge(age)} old`;
    if (newestFull.get(b.database) === b.key) {
      out.push({ ...d, action: 'keep', reason: `${label}: the newest complete full backup of "${b.database}" (never pruned)` });
    } else if (age > days[m.tier] * DAY_MS) {
      out.push({ ...d, action: 'delete', reason: `${label}: past the ${m.tier} retention (${days[m.tier]} days)` });
    } else {
      out.push({ ...d, action: 'keep', reason: `${label}: within the ${m.tier} retention (${days[m.tier]} days)` });
    }
  }
  for (const l of [...loose].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const idle = t - l.mtime.getTime();
    const what = l.what === 'partial' ? 'partial file of a backup' : 'manifest or verify record without its dump';
    const base = { key: l.key, what: l.what, files: [l.key], size: l.size };
    if (idle > GRACE_MS) out.push({ ...base, action: 'delete', reason: `${what}, last written ${shortAge(idle)} ago` });
    else out.push({ ...base, action: 'keep', reason: `${what}, written ${shortAge(idle)} ago: may belong to a backup running now (removed once idle for a day)` });
  }
  return out;
}
