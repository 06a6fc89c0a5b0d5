/**
 * The Prometheus text exposition format, for node_exporter's textfile collector (pure): the
 * metrics pgbackup writes, reading back a file it wrote (to keep counters across runs), and
 * rendering one with HELP and TYPE lines and escaped label values.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export const METRICS = {
  pgbackup_last_success_timestamp_seconds: { type: 'gauge', help: 'When the newest complete full backup of the database finished (Unix time).' },
  pgbackup_last_size_bytes: { type: 'gauge', help: 'Stored size of the newest complete full backup, in bytes.' },
  pgbackup_last_duration_seconds: { type: 'gauge', help: 'How long the newest complete full backup took, in seconds.' },
  pgbackup_last_verify_timestamp_seconds: { type: 'gauge', help: 'When a full backup of the database last passed verify (Unix time).' },
  pgbackup_failures_total: { type: 'counter', help: 'Failed runs of a command for the database, counted across runs.' },
  pgbackup_last_failure_timestamp_seconds: { type: 'gauge', help: 'When a run of the command for the database last failed (Unix time).' },
} as const;

export type MetricName = keyof typeof METRICS;

/** A label value as the format wants it: backslash, double quote and line feed escaped. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** One sample line: `name{a="x",b="y"} value [timestamp]`; null when it is not one. */
export function parseSampleLine(line: string): Sample | null {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{)?/.exec(line);
  if (!m) return null;
  let i = m[0].length;
  const labels: Record<string, string> = {};
  if (m[2]) {
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(i));
      if (!lm) return null;
      i += lm[0].length;
      let v = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return null;
        if (c === '"') break;
        if (c === '\\') {
          const n = line[i + 1];
          if (n === 'n') v += '\n';
          else if (n === '\\' || n === '"') v += n;
          else return null;
          i += 2;
          continue;
        }
        v += c;
        i++;
      }
      i++;
      if (lm[1]! in labels) return null;
      labels[lm[1]!] = v;
      while (line[i] === ' ') i++;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') return null;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === '') return null;
  const raw = rest[0]!;
  const value = raw === 'NaN' ? NaN : raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
  if (!/^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/.test(raw)) return null;
  if (rest[1] !== undefined && !/^-?\d+$/.test(rest[1])) return null;
  return { name: m[1]!, labels, value };
}

/** The samples of a text file; lines that are neither comments nor samples are returned apart. */
export function parseText(text: string): { samples: Sample[]; bad: string[] } {
  const samples: Sample[] = [];
  const bad: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const s = parseSampleLine(line);
    if (s) samples.push(s);
    else bad.push(line);
  }
  return { samples, bad };
}

/** Same metric, same labels. */
export function sameSeries(a: Pick<Sample, 'name' | 'labels'>, b: Pick<Sample, 'name' | 'labels'>): boolean {
  if (a.name !== b.name) return false;
  const ka = Object.keys(a.labels);
  return ka.length === Object.keys(b.labels).length && ka.every((k) => a.labels[k] === b.labels[k]);
}

/** Set a gauge (replacing its series) or add to a counter. */
export function setSample(samples: Sample[], s: Sample): Sample[] {
  return [...samples.filter((x) => !sameSeries(x, s)), s];
}

export function addToCounter(samples: Sample[], name: string, labels: Record<string, string>, by = 1): Sample[] {
  const old = samples.find((x) => sameSeries(x, { name, labels }));
  return setSample(samples, { name, labels, value: (old?.value ?? 0) + by });
}

/**
 * The file's text: each metric once with its HELP and TYPE, then its samples in a stable order.
 * Metrics pgbackup does not know (from an older or newer version) keep an untyped block.
 */
export function renderText(samples: readonly Sample[]): string {
  const byName = new Map<string, Sample[]>();
  for (const s of samples) {
    if (!NAME_RE.test(s.name)) throw new Error(`not a metric name: ${s.name}`);
    for (const k of Object.keys(s.labels)) if (!LABEL_RE.test(k)) throw new Error(`not a label name: ${k}`);
    byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
  }
  const names = [...byName.keys()].sort();
  const out: string[] = [];
  for (const name of names) {
    const meta = (METRICS as Record<string, { type: string; help: string }>)[name];
    out.push(`# HELP ${name} ${(meta?.help ?? 'Written by pgbackup.').replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    out.push(`# TYPE ${name} ${meta?.type ?? 'untyped'}`);
    const lines = byName.get(name)!.map((s) => {
      const labels = Object.keys(s.labels)
        .sort()
        .map((k) => `${k}="${escapeLabel(s.labels[k]!)}"`)
        .join(',');
      return `${name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`;
    });
    out.push(...lines.sort());
  }
  return out.length ? out.join('\n') + '\n' : '';
}
