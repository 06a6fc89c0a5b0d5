/** Argument parsing only (node:util parseArgs): no I/O, no defaults from the environment. */
import { parseArgs } from 'node:util';
import { UsageError } from '../support/errors.js';

type Opt = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };
type Spec = Record<string, Opt>;

export const COMMON: Spec = {
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  'progress-interval': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
};

const S = { type: 'string' } as const;
const B = { type: 'boolean' } as const;
const M = { type: 'string', multiple: true } as const;

export const COMMANDS: Record<string, { spec: Spec; positionals: number }> = {
  backup: {
    positionals: 0,
    spec: {
      database: S, to: M, recipient: M, 'recipients-file': S, 'passphrase-file': S, 'no-encryption': B,
      'compress-level': S, tier: S, schema: M, 'exclude-schema': M, table: M, 'exclude-table': M,
      'exclude-table-data': M, 'column-inserts': B, 'no-owner': B, 'no-privileges': B,
      'all-databases': B, globals: B, 'part-size': S, 'queue-size': S, timeout: S, 'stall-timeout': S,
      'healthcheck-url': S, 'webhook-url': S, prometheus: S,
    },
  },
  list: {
    positionals: 0,
    spec: { from: S, database: S, json: B },
  },
  restore: {
    positionals: 1,
    spec: {
      latest: B, at: S, from: S, database: S, to: S, identity: M, 'passphrase-file': S, create: B,
      'db-encoding': S, 'db-locale': S, 'create-with-defaults': B, 'apply-database-properties': B,
      clean: B, 'no-safety-backup': B, yes: B, 'no-owner': B, json: B, 'any-kind': B, 'lock-timeout': S,
      jobs: S, 'terminate-connections': B, list: B, table: M, schema: M, 'exclude-table': M,
    },
  },
  verify: {
    positionals: 1,
    spec: { latest: B, all: B, from: S, database: S, identity: M, 'passphrase-file': S, 'restore-into': S, json: B, 'any-kind': B, prometheus: S },
  },
  fetch: {
    positionals: 1,
    spec: { from: S, identity: M, 'passphrase-file': S, output: { type: 'string', short: 'o' }, force: B },
  },
  keygen: {
    positionals: 0,
    spec: { pq: B, output: { type: 'string', short: 'o' } },
  },
  bucket: {
    positionals: 1,
    spec: { to: S, from: S, apply: B, json: B },
  },
  prune: {
    positionals: 0,
    spec: { from: S, database: S, apply: B, json: B },
  },
  status: {
    positionals: 0,
    spec: { from: S, database: M, 'max-age': S, json: B, prometheus: S },
  },
  rekey: {
    positionals: 1,
    spec: { all: B, from: S, database: S, identity: M, 'passphrase-file': S, recipient: M, 'recipients-file': S },
  },
};

export interface Parsed {
  command: string | null;
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** Edit distance (insertions, deletions, substitutions, and swaps of neighbours). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name a typo most likely meant (--form -> --from, --to-database -> --to), or
 * undefined when nothing is close: one name the hyphenated start of the other, else at most a
 * third of the letters wrong.
 */
export function closest(name: string, known: string[]): string | undefined {
  const prefixed = known.filter((k) => name.startsWith(`${k}-`) || k.startsWith(`${name}-`));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dd = distance(name, k);
    if (dd < bestD) [best, bestD] = [k, dd];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(Math.max(name.length, best.length) / 3)) ? best : undefined;
}

/** Parse argv (without node and script). Collects every problem before failing. */
export function parseCli(argv: string[]): Parsed {
  const first = argv[0];
  if (first === undefined || first.startsWith('-')) {
    const { values } = parseArgs({ args: argv, options: COMMON, strict: false, allowPositionals: true });
    return { command: null, values: values, positionals: [] };
  }
  const cmd = COMMANDS[first];
  if (!cmd) {
    const near = closest(first, Object.keys(COMMANDS));
    throw new UsageError(`unknown command "${first}"${near ? ` (did you mean "${near}"?)` : ''} (expected one of: ${Object.keys(COMMANDS).join(', ')})`);
  }
  const spec = { ...COMMON, ...cmd.spec };
  const { values, positionals, tokens } = parseArgs({
    args: argv.slice(1),
    options: spec,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const problems: string[] = [];
  for (const t of tokens ?? []) {
    if (t.kind !== 'option') continue;
    const o = spec[t.name];
    if (!o) {
      const near = closest(t.name, Object.keys(spec));
      problems.push(`unknown option ${t.rawName} for "${first}"${near ? ` (did you mean --${near}?)` : ''}`);
      continue;
    }
    // `--to --clean`: parseArgs takes the next option as the value; a value that starts with `--`
    // must be given inline (`--to=--x`), so this is a missing value, not a strange one.
    if (o.type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('--')))) problems.push(`${t.rawName} needs a value`);
    if (o.type === 'boolean' && t.inlineValue) problems.push(`${t.rawName} takes no value`);
  }
  if (positionals.length > cmd.positionals) {
    problems.push(`unexpected argument(s): ${positionals.slice(cmd.positionals).map((p) => JSON.stringify(p)).join(' ')}`);
  }
  if (problems.length && !values.help) throw new UsageError(problems);
  const clean: Parsed['values'] = {};
  for (const [k, v] of Object.entries(values)) if (spec[k]) clean[k] = v;
  return { command: first, values: clean, positionals };
}
