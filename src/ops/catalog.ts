/** What backups a target holds: dumps paired with their manifests. */
import { VERIFIED_SUFFIX, isManifestKey, isoSeconds, manifestKey, parseKey, type ParsedKey } from '../model/keys.js';
import type { Storage } from '../storage/index.js';
import { manifestKind, parseManifest, type Manifest } from '../model/manifest.js';
import { messageOf } from '../support/errors.js';

export interface BackupEntry extends ParsedKey {
  size: number;
  lastModified: Date;
  /** A manifest exists: the backup is complete. */
  complete: boolean;
  /** The manifest's stored size (from the listing), when it exists. */
  manifestSize?: number | undefined;
  /** A verify record (`.verified.json`) exists beside it. */
  verified?: boolean;
}

/** Every dump under `prefix` (relative to the target), newest first. */
export async function listBackups(storage: Storage, prefix: string, signal: AbortSignal, database?: string): Promise<BackupEntry[]> {
  const dumps = new Map<string, { size: number; lastModified: Date; parsed: ParsedKey }>();
  const manifests = new Map<string, number>();
  const verified = new Set<string>();
  for await (const o of storage.list(prefix, signal)) {
    if (o.key.endsWith(VERIFIED_SUFFIX)) {
      verified.add(o.key.slice(0, -VERIFIED_SUFFIX.length));
      continue;
    }
    if (isManifestKey(o.key)) {
      manifests.set(o.key.slice(0, -'.json'.length), o.size);
      continue;
    }
    const parsed = parseKey(o.key);
    if (!parsed) continue;
    if (database !== undefined && parsed.database !== database) continue;
    dumps.set(o.key, { size: o.size, lastModified: o.lastModified, parsed });
  }
  const out: BackupEntry[] = [];
  for (const [key, d] of dumps) out.push({ ...d.parsed, size: d.size, lastModified: d.lastModified, complete: manifests.has(key), manifestSize: manifests.get(key), verified: verified.has(key) });
  out.sort((a, b) => b.time.getTime() - a.time.getTime() || b.seq - a.seq || (a.key < b.key ? 1 : -1));
  return out;
}

/** Manifests larger than this are refused before they are read whole (a manifest is a few KiB per 100 tables). */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** Backups dated further than this in the future (clock skew) are never "the latest". */
export const FUTURE_SKEW_MS = 5 * 60_000;

/** A listed backup's manifest, read only when its size is sane. */
export async function entryManifest(storage: Storage, e: BackupEntry, signal: AbortSignal): Promise<{ manifest: Manifest } | { error: string }> {
  if (!e.complete) return { error: 'no manifest (incomplete)' };
  if ((e.manifestSize ?? 0) > MAX_MANIFEST_BYTES) {
    return { error: `its manifest is ${e.manifestSize} bytes, over the ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB a manifest may have; not read` };
  }
  let bytes: Buffer | null;
  try {
    bytes = await storage.getBytes(manifestKey(e.key), signal);
  } catch (err) {
    if (signal.aborted) throw err;
    return { error: `cannot read its manifest: ${messageOf(err)}` };
  }
  if (!bytes) return { error: 'its manifest is gone' };
  return parseManifest(bytes);
}

export interface Selection {
  entry: BackupEntry;
  manifest: Manifest;
}

/**
 * The newest complete backup (at or before `at`) among `entries` (newest first), of kind
 * `full` unless `anyKind`. Unreadable or oversized manifests and backups dated more than
 * FUTURE_SKEW_MS ahead of `now` are skipped with a warning naming them. Manifests are read
 * newest first, only as far as needed.
 */
export async function selectBackup(
  storage: Storage,
  entries: BackupEntry[],
  o: { at?: Date | undefined; anyKind?: boolean; now?: Date; signal: AbortSignal; warn: (msg: string) => void },
): Promise<{ pick: Selection | null; skipped: string[] }> {
  const now = (o.now ?? new Date()).getTime();
  const skipped: string[] = [];
  const kinds = new Map<string, number>();
  for (const e of entries) {
    if (!e.complete) continue;
    if (o.at && e.time.getTime() > o.at.getTime()) continue;
    if (e.time.getTime() > now + FUTURE_SKEW_MS) {
      o.warn(`skipping ${e.key}: dated ${isoSeconds(e.time)}, in the future (clock skew on the machine that made it?)`);
      skipped.push(`${e.key} (dated in the future)`);
      continue;
    }
    const r = await entryManifest(storage, e, o.signal);
    if ('error' in r) {
      o.warn(`skipping ${e.key}: ${r.error}`);
      skipped.push(`${e.key} (${r.error})`);
      continue;
    }
    const kind = manifestKind(r.manifest);
    if (kind !== 'full' && !o.anyKind) {
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      continue;
    }
    return { pick: { entry: e, manifest: r.manifest }, skipped };
  }
  for (const [k, n] of kinds) skipped.push(`${n} ${k} backup(s) (--any-kind takes them too)`);
  return { pick: null, skipped };
}
