/** `pgbackup list`: newest first, one row per backup. */
import type { Parsed } from '../cli/args.js';
import { listConfig } from '../config/config.js';
import type { Context } from '../support/context.js';
import { formatAge, formatBytes } from '../support/units.js';
import { listBackups, type BackupEntry } from '../ops/catalog.js';
import { dbPrefix, isoSeconds } from '../model/keys.js';
import { openStorage, type Storage } from '../storage/index.js';
import { entryManifest } from '../ops/catalog.js';
import { filterOptions, manifestKind, type BackupKind, type Manifest } from '../model/manifest.js';

interface Details {
  tier?: string;
  tables?: number;
  kind?: BackupKind;
  filters?: string[];
  safetyFor?: Manifest['safetyFor'];
}

/** Tier, kind and counts come from the manifests, fetched a few at a time. */
async function details(storage: Storage, entries: BackupEntry[], signal: AbortSignal): Promise<Map<string, Details>> {
  const out = new Map<string, Details>();
  const todo = entries.filter((e) => e.complete);
  let i = 0;
  const worker = async () => {
    while (i < todo.length) {
      const e = todo[i++]!;
      const r = await entryManifest(storage, e, signal);
      if ('manifest' in r) {
        const m = r.manifest;
        out.set(e.key, { tier: m.tier, tables: m.tables.length, kind: manifestKind(m), filters: m.filters ?? filterOptions(m.pgDump.options), safetyFor: m.safetyFor });
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return out;
}

export async function listCommand(ctx: Context, parsed: Parsed): Promise<void> {
  const cfg = listConfig(parsed, ctx.env);
  const storage = openStorage(cfg.target);
  const entries = await listBackups(storage, cfg.database !== undefined ? dbPrefix('', cfg.database) : '', ctx.signal, cfg.database);
  const info = await details(storage, entries, ctx.signal);
  const now = Date.now();
  const rows = entries.map((e) => {
    const d = info.get(e.key);
    return {
      key: e.key,
      database: e.database,
      time: isoSeconds(e.time),
      age: formatAge(now - e.time.getTime()),
      ageSeconds: Math.floor((now - e.time.getTime()) / 1000),
      size: e.size,
      tier: d?.tier ?? (e.complete ? 'unknown' : '-'),
      kind: d?.kind ?? (e.complete ? 'unknown' : '-'),
      ...(d?.filters?.length ? { filters: d.filters } : {}),
      ...(d?.safetyFor ? { safetyFor: d.safetyFor } : {}),
      status: e.complete ? 'complete' : 'incomplete',
    };
  });
  if (cfg.json) {
    ctx.out(JSON.stringify({ target: storage.description, backups: rows }, null, 2) + '\n');
    return;
  }
  if (rows.length === 0) {
    ctx.out(`no backups in ${storage.description}${cfg.database ? ` for database "${cfg.database}"` : ''}\n`);
    return;
  }
  const table = [['KEY', 'DATABASE', 'TIME (UTC)', 'AGE', 'SIZE', 'TIER', 'KIND', 'STATUS'], ...rows.map((r) => [r.key, r.database, r.time, r.age, formatBytes(r.size), r.tier, r.kind, r.status])];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) ctx.out(r.map((cell, c) => (c === 4 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd() + '\n');
  const incomplete = rows.filter((r) => r.status === 'incomplete').length;
  ctx.out(`${rows.length} backup(s) in ${storage.description}${incomplete ? `, ${incomplete} incomplete (no manifest: failed, interrupted or still running)` : ''}\n`);
}
