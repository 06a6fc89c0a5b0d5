/** What backups a target holds: dumps paired with their manifests. */
import { isManifestKey, parseKey, type ParsedKey } from './keys.js';
import type { Storage } from './storage/index.js';

export interface BackupEntry extends ParsedKey {
  size: number;
  lastModified: Date;
  /** A manifest exists: the backup is complete. */
  complete: boolean;
}

/** Every dump under `prefix` (relative to the target), newest first. */
export async function listBackups(storage: Storage, prefix: string, signal: AbortSignal, database?: string): Promise<BackupEntry[]> {
  const dumps = new Map<string, { size: number; lastModified: Date; parsed: ParsedKey }>();
  const manifests = new Set<string>();
  for await (const o of storage.list(prefix, signal)) {
    if (isManifestKey(o.key)) {
      manifests.add(o.key.slice(0, -'.json'.length));
      continue;
    }
    const parsed = parseKey(o.key);
    if (!parsed) continue;
    if (database !== undefined && parsed.database !== database) continue;
    dumps.set(o.key, { size: o.size, lastModified: o.lastModified, parsed });
  }
  const out: BackupEntry[] = [];
  for (const [key, d] of dumps) out.push({ ...d.parsed, size: d.size, lastModified: d.lastModified, complete: manifests.has(key) });
  out.sort((a, b) => b.time.getTime() - a.time.getTime() || b.seq - a.seq || (a.key < b.key ? 1 : -1));
  return out;
}
