/** Argument parsing only (node:util parseArgs): no I/O, no defaults from the environment. */
import { parseArgs } from 'node:util';
import { UsageError } from '../support/errors.js';

type Opt = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };
type Spec = Record<string, Opt>;

export const COMMON: Spec = {
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
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

/** Parse argv (without node and script). Collects every problem before failing. */
export function parseCli(argv: string[]): Parsed {
  const first = argv[0];
  if (first === undefined || first.startsWith('-')) {
    const { values } = parseArgs({ args: argv, options: COMMON, strict: false, allowPositionals: true });
    return { command: null, values: values, positionals: [] };
  }
  const cmd = COMMANDS[first];
  if (!cmd) throw new UsageError(`unknown command "${first}" (expected one of: ${Object.keys(COMMANDS).join(', ')})`);
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
      problems.push(`unknown option ${t.rawName} for "${first}"`);
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
