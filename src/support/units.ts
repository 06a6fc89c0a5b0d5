/**
 * Sizes and durations: the one place that parses what users write ("512MiB", "1h30m") and
 * formats what we print (for people: "1.5 GiB", "2m5s"; for help and defaults: "8MiB", "10m",
 * which parse back to the same number). Pure, no I/O.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** Size suffixes, case-insensitive: k/m/g/t and KiB... are binary, kB/MB/GB are decimal. */
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: KiB, kb: 1000, kib: KiB, m: MiB, mb: 1000 ** 2, mib: MiB, g: GiB, gb: 1000 ** 3, gib: GiB, t: TiB, tib: TiB };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY };

/** "16MiB", "64M", "1.5GiB", "4096" -> bytes; undefined when it is not a size. */
export function parseSize(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  return Math.round(Number(m[1]) * unit);
}

/** "90s", "10m", "1h30m", "1500ms", "30d" -> milliseconds (a unit is required); undefined when it is not a duration. */
export function parseDuration(s: string): number | undefined {
  const t = s.trim();
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(t)) return undefined;
  return [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)].reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0);
}

/** Bytes for people: "512 B", "8.0 MiB", "1.5 GiB". */
export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${u[i]}`;
}

/** A run's duration for people: "850 ms", "12.3 s", "4m5s", "2h10m". */
export function formatDuration(ms: number): string {
  if (ms < SECOND) return `${ms} ms`;
  const s = ms / SECOND;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}

/** An age in one coarse unit: "45m", "30h", "12d" (minutes under an hour, hours under two days). */
export function formatAge(ms: number): string {
  const m = Math.floor(ms / MINUTE);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** A size as a user would write it, exact: 8 MiB -> "8MiB", 1536 -> "1536" (parseSize reads it back). */
export function sizeLabel(n: number): string {
  for (const [u, f] of [['TiB', TiB], ['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) if (n >= f && n % f === 0) return `${n / f}${u}`;
  return String(n);
}

/** A duration as a user would write it, exact: 600000 -> "10m", 5400000 -> "1h30m" (parseDuration reads it back). */
export function durationLabel(ms: number): string {
  let rest = ms;
  let out = '';
  for (const [u, f] of [['d', DAY], ['h', HOUR], ['m', MINUTE], ['s', SECOND], ['ms', 1]] as const) {
    const q = Math.floor(rest / f);
    if (q > 0) out += `${q}${u}`;
    rest -= q * f;
  }
  return out || '0s';
}
