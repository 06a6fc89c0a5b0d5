/** `pgbackup list`: newest first, one row per backup. */
import type { Parsed } from './cli.js';
import { listConfig } from './config.js';
import { type Context, humanBytes } from './context.js';
import { listBackups, type BackupEntry } from './catalog.js';
import { dbPrefix, isoSeconds, manifestKey } from './keys.js';
import { openStorage, type Storage } from './storage/index.js';
import { parseManifest } from './manifest.js';

function age(ms: number): string {
  const m = Math.floor(ms / 60000);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** Tier and counts come from the manifests, fetched a few at a time. */
async function details(storage: Storage, entries: BackupEntry[], signal: AbortSignal): Promise<Map<string, { tier?: string; tables?: number }>> {
  const out = new Map<string, { tier?: string; tables?: number }>();
  const todo = entries.filter((e) => e.complete);
  let i = 0;
  const worker = async () => {
    while (i < todo.length) {
      const e = todo[i++]!;
      const bytes = await storage.getBytes(manifestKey(e.key), signal).catch(() => null);
      if (!bytes) continue;
      const r = parseManifest(bytes);
      if ('manifest' in r) out.set(e.key, { tier: r.manifest.tier, tables: r.manifest.tables.length });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return out;
}

export async function listCommand(ctx: Context, parsed: Parsed): Promise<number> {
  const cfg = listConfig(parsed, ctx.env);
  const storage = openStorage(cfg.target);
  const entries = await listBackups(storage, cfg.database !== undefined ? dbPrefix('', cfg.database) : '', ctx.signal, cfg.database);
  const info = await details(storage, entries, ctx.signal);
  const now = Date.now();
  const rows = entries.map((e) => ({
    key: e.key,
    database: e.database,
    time: isoSeconds(e.time),
    age: age(now - e.time.getTime()),
    size: e.size,
    tier: info.get(e.key)?.tier ?? (e.complete ? 'unknown' : '-'),
    status: e.complete ? 'complete' : 'incomplete',
  }));
  if (cfg.json) {
    ctx.out(JSON.stringify({ target: storage.description, backups: rows }, null, 2) + '\n');
    return 0;
  }
  if (rows.length === 0) {
    ctx.out(`no backups in ${storage.description}${cfg.database ? ` for database "${cfg.database}"` : ''}\n`);
    return 0;
  }
  const table = [['KEY', 'DATABASE', 'TIME (UTC)', 'AGE', 'SIZE', 'TIER', 'STATUS'], ...rows.map((r) => [r.key, r.database, r.time, r.age, humanBytes(r.size), r.tier, r.status])];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) ctx.out(r.map((cell, c) => (c === 4 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd() + '\n');
  const incomplete = rows.filter((r) => r.status === 'incomplete').length;
  ctx.out(`${rows.length} backup(s) in ${storage.description}${incomplete ? `, ${incomplete} incomplete (no manifest: failed, interrupted or still running)` : ''}\n`);
  return 0;
}
