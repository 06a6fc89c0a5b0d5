/**
 * Help text, `pgbackup help COMMAND`, shell completion and the man page, all generated from the
 * parser's own option definitions (cli.ts COMMANDS/COMMON) plus the words below. No I/O.
 * test/unit/clidocs.test.ts holds every option of the parser to a description here and back.
 */
import { COMMANDS, COMMON, closest } from './cli/args.js';

export interface OptDoc {
  /** The value's placeholder (string options only). */
  arg?: string;
  help: string;
  default?: string;
  env?: string;
}
export interface CommandDoc {
  synopsis: string;
  summary: string;
  about: string;
  options: Record<string, OptDoc>;
}

const TARGET_FROM: OptDoc = { arg: 'TARGET', help: 's3://bucket/prefix/ or a folder to read backups from', default: './backups', env: 'PGBACKUP_TARGET' };
const IDENTITY: OptDoc = { arg: 'FILE', help: 'age identity file (repeatable; the variable takes a comma-separated list)', env: 'PGBACKUP_IDENTITY_FILE' };
const PASSPHRASE_IN: OptDoc = { arg: 'FILE', help: 'file holding the passphrase of a passphrase-encrypted backup', env: 'PGBACKUP_PASSPHRASE_FILE' };

export const COMMON_DOCS: Record<string, OptDoc> = {
  'log-format': { arg: 'json|pretty', help: 'log format on stderr', default: 'pretty on a terminal, else json' },
  'log-level': { arg: 'LEVEL', help: 'trace, debug, info, warn, error, fatal or silent', default: 'info (warn with --quiet)', env: 'PGBACKUP_LOG_LEVEL' },
  quiet: { help: 'log warnings and errors only, no progress' },
  'progress-interval': {
    arg: 'DURATION',
    help:
      'JSON logs: a progress event (step, bytes done and expected, percent, rate, ETA) this often during backup, restore, verify, fetch and rekey; ' +
      'on a terminal one progress line is redrawn in place instead; pretty logs off a terminal, --quiet and levels above info get none',
    default: '10s',
    env: 'PGBACKUP_PROGRESS_INTERVAL',
  },
  help: { help: 'print this help' },
  version: { help: 'print the version' },
};

export const DOCS: Record<string, CommandDoc> = {
  backup: {
    synopsis: 'pgbackup backup [options]',
    summary: 'dump, compress, encrypt and store a database',
    about:
      'Dump a database with pg_dump (plain SQL), count the rows of every table, compress (gzip), encrypt (age) and store it under ' +
      '{prefix}{db}/{YYYY}/{MM}/{DD}/{db}_{YYYYMMDD}T{HHMMSS}Z.sql.gz.age with a .json manifest. Prints the stored key on stdout ' +
      'and a summary on stderr. Without --to or PGBACKUP_TARGET it stores into ./backups and says so with its absolute path.',
    options: {
      database: { arg: 'URL', help: 'the database to back up: postgres:// URL or key=value connection string', env: 'DATABASE_URL, then the libpq PG* variables' },
      'all-databases': { help: 'every non-template database, each into its own object; the transient staging databases of parallel restores (pgbackup_staging_*) are skipped and named in the log' },
      globals: { help: 'also roles and tablespaces (pg_dumpall --globals-only), stored as database "_globals"' },
      to: {
        arg: 'TARGET',
        help:
          's3://bucket/prefix/ or a folder to store into; repeatable: the database is dumped once and the same bytes go to every target at once, ' +
          'each with its own manifest, under the same key (the slowest target sets the pace). The run succeeds only when every target has the backup; ' +
          'a target that fails is aborted and named, the others keep their complete backups, and the exit code is 4',
        default: './backups',
        env: 'PGBACKUP_TARGET (several: separated by whitespace)',
      },
      recipient: { arg: 'AGE_KEY', help: 'age public key (age1... or age1pq1...); repeatable', env: 'PGBACKUP_RECIPIENTS (space- or comma-separated)' },
      'recipients-file': { arg: 'FILE', help: 'file of age public keys, one a line', env: 'PGBACKUP_RECIPIENTS_FILE' },
      'passphrase-file': { arg: 'FILE', help: 'encrypt with the passphrase in FILE (scrypt) instead of recipients', env: 'PGBACKUP_PASSPHRASE_FILE' },
      'no-encryption': { help: 'store the dump unencrypted (.sql.gz); without it, one of the encryption options is required' },
      'compress-level': { arg: '0-9', help: 'gzip level; 0 stores uncompressed .sql', default: '6' },
      tier: { arg: 'auto|daily|weekly|monthly|yearly', help: 'retention tier tag', default: 'auto (first of the year, month, ISO week, else daily)' },
      schema: { arg: 'PATTERN', help: 'only these schemas (pg_dump --schema; repeatable; makes a partial backup)' },
      'exclude-schema': { arg: 'PATTERN', help: 'leave out these schemas (repeatable; partial backup)' },
      table: { arg: 'PATTERN', help: 'only these tables (repeatable; partial backup)' },
      'exclude-table': { arg: 'PATTERN', help: 'leave out these tables (repeatable; partial backup)' },
      'exclude-table-data': { arg: 'PATTERN', help: 'leave out the data of these tables (repeatable; partial backup)' },
      'column-inserts': { help: 'pass --column-inserts to pg_dump (INSERT statements instead of COPY)' },
      'no-owner': { help: 'pass --no-owner to pg_dump' },
      'no-privileges': { help: 'pass --no-privileges to pg_dump' },
      'part-size': { arg: 'SIZE', help: 'S3 multipart part size, e.g. 16MiB (grows when a large database needs it)', default: '8MiB', env: 'PGBACKUP_S3_PART_SIZE' },
      'queue-size': { arg: 'N', help: 'parts uploaded at once (1-64)', default: '3', env: 'PGBACKUP_S3_QUEUE_SIZE' },
      timeout: { arg: 'DURATION', help: 'give up after this long, e.g. 2h (exit 3 or 4, nothing stored)', default: 'none' },
      'stall-timeout': { arg: 'DURATION', help: 'kill pg_dump when it writes nothing for this long', default: '10m' },
      'healthcheck-url': { arg: 'URL', help: 'ping URL/start, then URL on success or URL/fail on failure' },
      'webhook-url': { arg: 'URL', help: 'POST a JSON summary when done' },
      prometheus: { arg: 'FILE', help: "update this node_exporter textfile (*.prom) when the run ends: each database's last success, size and duration per target; pgbackup_failures_total on failure" },
    },
  },
  list: {
    synopsis: 'pgbackup list [--from TARGET] [--database NAME] [--json]',
    summary: 'list stored backups',
    about:
      'List backups, newest first: key, database, time (UTC) and age, size, tier, kind (full; partial: made with --schema/--table/--exclude-*; ' +
      'safety: taken before a --clean restore) and whether each is complete (a dump without its manifest is incomplete).',
    options: {
      from: TARGET_FROM,
      database: { arg: 'NAME', help: "only this database's backups", default: 'every database' },
      json: { help: 'one JSON document; adds ageSeconds, the filters of a partial backup and the restore a safety backup protects' },
    },
  },
  restore: {
    synopsis: 'pgbackup restore [KEY | FILE | --latest | --at TIME] --to URL [options]',
    summary: 'restore a backup into a database, safely',
    about:
      'Restore a backup into a database with psql, in one transaction (ON_ERROR_STOP). KEY is a key under the target; FILE a local ' +
      '.sql, .sql.gz, .sql.age or .sql.gz.age file given as a path (./x.sql, /path/x.sql.gz.age or file:PATH). The age header is checked ' +
      'before the target is touched (a wrong key exits 5); a target with tables needs --clean, which takes a safety backup first; ' +
      'any failure leaves the target as it was. Row counts are compared with the manifest afterwards (exit 7 on a mismatch).',
    options: {
      latest: { help: 'the newest complete full backup of --database' },
      at: { arg: 'TIME', help: 'the newest complete full backup at or before TIME (ISO 8601; UTC unless it names a zone; a date alone means the end of that day)' },
      'any-kind': { help: 'let --latest / --at pick safety and partial backups too' },
      from: TARGET_FROM,
      database: { arg: 'NAME', help: "which database's backups --latest / --at choose from", default: "the target database's name" },
      to: { arg: 'URL', help: 'the database to restore into (required; never taken from DATABASE_URL or PG* variables)' },
      create: { help: "create the target database when it does not exist, with the source's encoding, locale and properties" },
      clean: { help: 'replace the contents of a target that already has tables' },
      yes: { help: 'confirm --clean when not on a terminal' },
      'no-safety-backup': { help: 'skip the backup of the target taken before --clean' },
      'no-owner': { help: 'drop every ALTER ... OWNER TO (as pg_restore --no-owner): the objects belong to the restoring role' },
      json: { help: 'print the result (or, with --list, the entries) as JSON' },
      'lock-timeout': { arg: 'DURATION', help: 'give up when a lock is not granted within this time (exit 6 naming the sessions holding locks)', default: '1m' },
      'terminate-connections': { help: "end the target's other sessions after the confirmation" },
      table: { arg: 'SCHEMA.NAME', help: 'restore only this table and what belongs to it (repeatable; pg_dump-style patterns: * ? and "quoted" parts)' },
      schema: { arg: 'NAME', help: 'restore only this schema and everything in it (repeatable; patterns as for --table)' },
      'exclude-table': { arg: 'SCHEMA.NAME', help: 'leave this table out of what --table / --schema select (repeatable)' },
      list: { help: "print the backup's entries and restore nothing: one a line, tab-separated type, schema, name, owner and rows (of each table's data)" },
      jobs: { arg: 'N', help: 'load over N psql sessions into a database --create makes or a staging database swapped in by rename', default: '1 (one session, one transaction)' },
      'db-encoding': { arg: 'ENC', help: "--create: this encoding instead of the source's" },
      'db-locale': { arg: 'LOCALE', help: "--create: this libc locale (LC_COLLATE and LC_CTYPE) instead of the source's" },
      'create-with-defaults': { help: "--create: the cluster's default encoding and locale (template0's)" },
      'apply-database-properties': { help: "with --clean into an existing database: apply the source's owner, ACL, settings, comment and security labels" },
      identity: IDENTITY,
      'passphrase-file': PASSPHRASE_IN,
    },
  },
  verify: {
    synopsis: 'pgbackup verify [KEY | --latest | --all] [options]',
    summary: 'prove that backups are whole and restorable',
    about:
      'Read backups back without a database: sha256 and size against the manifest, every age chunk, every gzip CRC, the dump\'s ' +
      'completion marker and the row counts of every table. The exit code is the worst finding; nothing to verify exits 4.',
    options: {
      latest: { help: 'what restore --latest would take (the newest full backup of --database)' },
      all: { help: 'every backup under the target, with a summary' },
      'any-kind': { help: 'let --latest pick safety and partial backups too' },
      from: TARGET_FROM,
      database: { arg: 'NAME', help: "only this database's backups", default: 'every database' },
      identity: IDENTITY,
      'passphrase-file': PASSPHRASE_IN,
      'restore-into': { arg: 'URL', help: 'also restore into a scratch database on this server, compare row counts, and drop it' },
      json: { help: 'print the findings as JSON' },
      prometheus: { arg: 'FILE', help: 'update this node_exporter textfile (*.prom) when done: the last successful verify of each database; pgbackup_failures_total on failure' },
    },
  },
  fetch: {
    synopsis: 'pgbackup fetch KEY [--from TARGET] [--identity FILE]... [-o FILE|-] [--force]',
    summary: "write a backup's decrypted SQL to a file or stdout",
    about: "Write a backup's decrypted, decompressed SQL to FILE or stdout. FILE appears only once the whole backup was read and checked.",
    options: {
      from: TARGET_FROM,
      identity: IDENTITY,
      'passphrase-file': PASSPHRASE_IN,
      output: { arg: 'FILE', help: 'where to write the SQL; - is stdout; a device or named pipe (/dev/null) is written into, never replaced', default: '-' },
      force: { help: 'replace an existing regular FILE (else refused with exit 2)' },
    },
  },
  keygen: {
    synopsis: 'pgbackup keygen [--pq] [-o FILE]',
    summary: 'create an age identity',
    about:
      'Create an age identity. With -o, write it to FILE (mode 0600, never overwriting) and print the public key; without, print the ' +
      'identity to stdout and the public key to stderr.',
    options: {
      pq: { help: 'a post-quantum hybrid identity (age1pq1... recipient)' },
      output: { arg: 'FILE', help: 'write the identity to FILE', default: 'stdout' },
    },
  },
  bucket: {
    synopsis: 'pgbackup bucket check | lifecycle [--apply] [--to s3://bucket/prefix/]',
    summary: 'check an S3 bucket, print or apply lifecycle rules',
    about:
      'check: report versioning, encryption, public access block, TLS-only policy, object lock and lifecycle rules. ' +
      'lifecycle: print the lifecycle rules of the retention settings for this prefix; --apply writes them (keeping other prefixes\' rules).',
    options: {
      to: { arg: 'TARGET', help: 'the s3://bucket/prefix/ to check', env: 'PGBACKUP_TARGET' },
      from: { arg: 'TARGET', help: 'same as --to', env: 'PGBACKUP_TARGET' },
      apply: { help: 'lifecycle: write the rules to the bucket' },
      json: { help: 'print the findings as JSON' },
    },
  },
  prune: {
    synopsis: 'pgbackup prune [--from FOLDER] [--database NAME] [--apply] [--json]',
    summary: 'apply the retention to a folder target (dry run unless --apply)',
    about:
      'The tier retention S3 lifecycle rules give, for folder targets: each complete backup is deleted once older than its tier\'s days ' +
      '(PGBACKUP_KEEP_DAILY_DAYS, _WEEKLY_, _MONTHLY_, _YEARLY_; defaults 7, 35, 400, 3650), counted from the time in its key; safety and ' +
      'partial backups by their own tier (daily). Incomplete dumps (no manifest), partial files and manifests without a dump go once nothing ' +
      'wrote to them for a day. The newest complete full backup of each database is never deleted, and nothing a running backup may still ' +
      'write is touched. Prints every decision with its reason. An S3 target is refused (exit 2): use bucket lifecycle.',
    options: {
      from: { arg: 'FOLDER', help: 'the folder target to prune', default: './backups', env: 'PGBACKUP_TARGET' },
      database: { arg: 'NAME', help: "only this database's backups", default: 'every database' },
      apply: { help: 'delete (without it, only print what would be deleted and kept, and why)' },
      json: { help: 'print the decisions as one JSON document' },
    },
  },
  status: {
    synopsis: 'pgbackup status [--from TARGET] [--database NAME]... [--max-age DURATION] [--json] [--prometheus FILE]',
    summary: 'newest and newest verified backup per database; freshness check',
    about:
      'Per database: the newest complete full backup (key, time and age, stored size, tier, how long it took), the newest full backup ' +
      'that passed verify (from the {key}.verified.json record verify writes beside the manifest) and the stored size of the last ' +
      'full backups with the change on the previous one. With --max-age it is a freshness check: exit 8 when a database\'s newest ' +
      'complete full backup is older than DURATION or it has none (a database named with --database that has no backup; no backups at all).',
    options: {
      from: TARGET_FROM,
      database: { arg: 'NAME', help: 'only this database (repeatable); a named database without backups is reported as such', default: 'every database in the target' },
      'max-age': { arg: 'DURATION', help: "exit 8 when a database's newest complete full backup is older than this, e.g. 26h", default: 'no check' },
      json: { help: 'one JSON document' },
      prometheus: { arg: 'FILE', help: 'write the status as a node_exporter textfile (*.prom), atomically; failure counters from earlier runs are kept' },
    },
  },
  rekey: {
    synopsis: 'pgbackup rekey KEY | --all [--database NAME] [--from TARGET] --identity OLD... --recipient NEW...',
    summary: "re-encrypt backups' file keys for new recipients (key rotation)",
    about:
      "Rewrites each backup's age header for the new recipients without decrypting or re-encrypting the data: the file key is unwrapped " +
      'with the old identity (or passphrase), wrapped for the new recipients, and the header MAC recomputed. On S3 the data is copied ' +
      'server-side (UploadPartCopy after a new first part); a folder gets a new file renamed into place. The copy is read back and every ' +
      'age chunk authenticated before it replaces the old object; the manifest gets the new recipients, sha256 and size. An interrupted run ' +
      'leaves every backup readable by the old or the new key, and running the same command again finishes it (docs/rekey.md). Prints ' +
      '"rekeyed KEY" or "unchanged KEY" (already for these recipients) per backup; a failure on one backup does not stop the others.',
    options: {
      all: { help: 'every complete encrypted backup under the target (or of --database)' },
      from: TARGET_FROM,
      database: { arg: 'NAME', help: "with --all: only this database's backups", default: 'every database' },
      identity: { arg: 'FILE', help: 'the old age identity file that opens the backups (repeatable; the variable takes a comma-separated list)', env: 'PGBACKUP_IDENTITY_FILE' },
      'passphrase-file': { arg: 'FILE', help: 'the old passphrase, for passphrase-encrypted backups', env: 'PGBACKUP_PASSPHRASE_FILE' },
      recipient: { arg: 'AGE_KEY', help: 'a new recipient (age1... or age1pq1...); repeatable', env: 'PGBACKUP_RECIPIENTS (space- or comma-separated)' },
      'recipients-file': { arg: 'FILE', help: 'file of new recipients, one a line', env: 'PGBACKUP_RECIPIENTS_FILE' },
    },
  },
};

/** Commands that are not in the parser: they take no options. */
export const EXTRA_COMMANDS: Record<string, { synopsis: string; summary: string }> = {
  help: { synopsis: 'pgbackup help [COMMAND]', summary: "print a command's help" },
  completion: { synopsis: 'pgbackup completion bash|zsh', summary: 'print a shell completion script' },
};

export const ENVIRONMENT: [string, string][] = [
  ['DATABASE_URL, PG* (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGPASSFILE, PGSERVICE, PGSSLMODE, PGSSLROOTCERT, PGOPTIONS, PGAPPNAME, ...)', 'the source of backup (a flag wins); restore always takes --to'],
  ['PGBACKUP_PROGRESS_INTERVAL', 'default of --progress-interval: in JSON logs a progress event (step, doneBytes, totalBytes, percent, bytesPerSecond, etaSeconds) this often during backup, restore, verify, fetch and rekey; default 10s'],
  ['PGBACKUP_TARGET', 's3://bucket/prefix/ or a folder; default ./backups. backup takes several separated by whitespace (each an s3:// URL or an absolute path); the other commands read from the first'],
  ['PGBACKUP_RECIPIENTS, PGBACKUP_RECIPIENTS_FILE', 'age public keys for backup'],
  ['PGBACKUP_IDENTITY_FILE, PGBACKUP_PASSPHRASE_FILE', 'secrets for restore, verify and fetch (and the passphrase for backup)'],
  ['PGBACKUP_PG_BINDIR', 'where pg_dump and psql live (else chosen by the server major version)'],
  ['PGBACKUP_LOG_LEVEL', 'default of --log-level'],
  ['PGBACKUP_KEEP_DAILY_DAYS, PGBACKUP_KEEP_WEEKLY_DAYS, PGBACKUP_KEEP_MONTHLY_DAYS, PGBACKUP_KEEP_YEARLY_DAYS', 'days each tier is kept (bucket lifecycle, prune); defaults 7, 35, 400, 3650'],
  ['AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL', 'the standard AWS chain'],
  ['PGBACKUP_S3_FORCE_PATH_STYLE, PGBACKUP_S3_SSE, PGBACKUP_S3_KMS_KEY_ID, PGBACKUP_S3_STORAGE_CLASS, PGBACKUP_S3_PART_SIZE, PGBACKUP_S3_QUEUE_SIZE', 'S3 options'],
  ['PGBACKUP_S3_TIMEOUT', 'how long an S3 request may go without a byte sent or received before it fails and is retried (default 2m; connecting gets at most 10s)'],
  ['AWS_MAX_ATTEMPTS', 'attempts per S3 request (default 5): a server that stops answering fails the run after about AWS_MAX_ATTEMPTS x PGBACKUP_S3_TIMEOUT'],
];

export const EXIT_CODES: [string, string][] = [
  ['0', 'done'],
  ['1', 'unexpected failure (a bug: the message says so)'],
  ['2', 'usage or configuration error'],
  ['3', 'dump failed (pg_dump, connection, authentication, version)'],
  ['4', 'storage failed (S3 or folder), or nothing to verify'],
  ['5', 'crypto: no identity matches, wrong passphrase, data truncated or tampered'],
  ['6', 'restore failed; the target is as it was before'],
  ['7', 'verification mismatch (checksum, row counts, missing manifest)'],
  ['8', "stale: status --max-age found a database whose newest complete full backup is older, or none"],
  ['130, 143', 'interrupted by SIGINT / SIGTERM, after cleaning up'],
];

type Spec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

function specOf(cmd: string): Spec {
  return COMMANDS[cmd]!.spec;
}

/** Option name, in help order: the command's own, then the common ones. */
export function optionLabel(name: string, o: Spec[string], d: OptDoc | undefined): string {
  const flag = `${o.short ? `-${o.short}, ` : ''}--${name}`;
  return o.type === 'string' ? `${flag} ${d?.arg ?? 'VALUE'}` : flag;
}

function optionNotes(o: Spec[string], d: OptDoc | undefined): string {
  const notes: string[] = [];
  if (o.multiple) notes.push('repeatable');
  if (d?.default !== undefined) notes.push(`default: ${d.default}`);
  if (d?.env !== undefined) notes.push(`env: ${d.env}`);
  return notes.length ? ` [${notes.join('; ')}]` : '';
}

function wrap(text: string, width: number, indent: string): string {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out.map((l) => indent + l).join('\n');
}

function optionLines(spec: Spec, docs: Record<string, OptDoc>): string[] {
  const lines: string[] = [];
  for (const [name, o] of Object.entries(spec)) {
    const d = docs[name];
    lines.push(`  ${optionLabel(name, o, d)}`);
    lines.push(wrap(`${d?.help ?? ''}${optionNotes(o, d)}`, 92, '      '));
  }
  return lines;
}

export function commandHelp(cmd: string): string {
  const doc = DOCS[cmd]!;
  return [
    `Usage: ${doc.synopsis}`,
    '',
    wrap(doc.about, 96, ''),
    '',
    'Options:',
    ...optionLines(specOf(cmd), doc.options),
    '',
    'Common options:',
    ...optionLines(COMMON, COMMON_DOCS),
    '',
    'Exit codes: 0 done, 1 bug, 2 usage/configuration, 3 dump failed, 4 storage failed, 5 crypto,',
    '6 restore failed, 7 verification mismatch, 8 stale (status --max-age), 130/143 interrupted.',
  ].join('\n');
}

export function mainHelp(): string {
  const rows = [...Object.keys(COMMANDS).map((c) => [c, DOCS[c]?.summary ?? ''] as const), ...Object.entries(EXTRA_COMMANDS).map(([c, d]) => [c, d.summary] as const)];
  return [
    'pgbackup: PostgreSQL backups to S3 or a folder, gzip-compressed and age-encrypted.',
    '',
    'Usage: pgbackup <command> [options]',
    '',
    'Commands:',
    ...rows.map(([c, s]) => `  ${c.padEnd(11)}${s}`),
    '',
    'Common options:',
    ...optionLines(COMMON, COMMON_DOCS),
    '',
    'Run "pgbackup help <command>" (or "pgbackup <command> --help") for a command\'s options.',
    'Exit codes: 0 done, 1 bug, 2 usage/configuration, 3 dump failed, 4 storage failed, 5 crypto,',
    '6 restore failed, 7 verification mismatch, 8 stale (status --max-age), 130/143 interrupted.',
  ].join('\n');
}

function allOptions(cmd: string): [string, Spec[string], OptDoc | undefined][] {
  const own = Object.entries(specOf(cmd)).map(([n, o]) => [n, o, DOCS[cmd]!.options[n]] as [string, Spec[string], OptDoc | undefined]);
  const common = Object.entries(COMMON).map(([n, o]) => [n, o, COMMON_DOCS[n]] as [string, Spec[string], OptDoc | undefined]);
  return [...own, ...common];
}

const FILE_ARGS = new Set(['FILE']);

export function bashCompletion(): string {
  const cmds = [...Object.keys(COMMANDS), ...Object.keys(EXTRA_COMMANDS)];
  const cases = Object.keys(COMMANDS).map((c) => {
    const opts = allOptions(c).flatMap(([n, o]) => (o.short ? [`--${n}`, `-${o.short}`] : [`--${n}`]));
    const fileOpts = allOptions(c).filter(([, o, d]) => o.type === 'string' && FILE_ARGS.has(d?.arg ?? '')).flatMap(([n, o]) => (o.short ? [`--${n}`, `-${o.short}`] : [`--${n}`]));
    const valueOpts = allOptions(c).filter(([, o]) => o.type === 'string').flatMap(([n, o]) => (o.short ? [`--${n}`, `-${o.short}`] : [`--${n}`]));
    const words = c === 'bucket' ? 'check lifecycle ' : '';
    return `    ${c})
      opts="${words}${opts.join(' ')}"
      file_opts="${fileOpts.join(' ')}"
      value_opts="${valueOpts.join(' ')}"
      ;;`;
  });
  return `# bash completion for pgbackup (generated by "pgbackup completion bash")
# Load it in your shell:  source <(pgbackup completion bash)
_pgbackup() {
  local cur prev cmd opts file_opts value_opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${cmds.join(' ')} --help --version" -- "$cur") )
    return 0
  fi
  cmd="\${COMP_WORDS[1]}"
  case "$cmd" in
    help)
      COMPREPLY=( $(compgen -W "${Object.keys(COMMANDS).join(' ')}" -- "$cur") )
      return 0
      ;;
    completion)
      COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") )
      return 0
      ;;
${cases.join('\n')}
    *)
      return 0
      ;;
  esac
  case " $file_opts " in
    *" $prev "*) COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;
  esac
  case " $value_opts " in
    *" $prev "*) COMPREPLY=(); return 0 ;;
  esac
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  if [ "$cmd" = restore ] && [[ "$cur" != -* ]]; then COMPREPLY+=( $(compgen -f -- "$cur") ); fi
  return 0
}
complete -F _pgbackup pgbackup
`;
}

function zshQuote(s: string): string {
  return s.replace(/[[\]:]/g, (c) => ({ '[': '(', ']': ')', ':': ' ' })[c]!).replace(/'/g, `'\\''`);
}

export function zshCompletion(): string {
  const cmdList = [...Object.keys(COMMANDS).map((c) => `'${c}:${zshQuote(DOCS[c]?.summary ?? '')}'`), ...Object.entries(EXTRA_COMMANDS).map(([c, d]) => `'${c}:${zshQuote(d.summary)}'`)];
  const cases = Object.keys(COMMANDS).map((c) => {
    const specs = allOptions(c).map(([n, o, d]) => {
      const help = zshQuote(d?.help ?? '');
      const rep = o.multiple ? '*' : '';
      const val = o.type === 'string' ? `:${zshQuote(d?.arg ?? 'VALUE')}:${FILE_ARGS.has(d?.arg ?? '') ? '_files' : ' '}` : '';
      const names = o.short ? `{-${o.short},--${n}}` : `--${n}`;
      return o.short ? `        '${rep}'${names}'[${help}]${val}'` : `        '${rep}${names}[${help}]${val}'`;
    });
    const pos = c === 'bucket' ? [`        '1:action:(check lifecycle)'`] : COMMANDS[c]!.positionals ? [`        '1:key or file:_files'`] : [];
    return `    ${c})\n      _arguments -s \\\n${[...specs, ...pos].join(' \\\n')}\n      ;;`;
  });
  return `#compdef pgbackup
# zsh completion for pgbackup (generated by "pgbackup completion zsh")
# Load it: pgbackup completion zsh > "\${fpath[1]}/_pgbackup", or: source <(pgbackup completion zsh)
_pgbackup() {
  local -a commands
  commands=(${cmdList.join(' ')})
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  local cmd=$words[2]
  shift words
  (( CURRENT-- ))
  case $cmd in
    help)
      _values 'command' ${Object.keys(COMMANDS).join(' ')}
      ;;
    completion)
      _values 'shell' bash zsh
      ;;
${cases.join('\n')}
  esac
}
if [ "$funcstack[1]" = "_pgbackup" ]; then _pgbackup "$@"; else compdef _pgbackup pgbackup; fi
`;
}

function roff(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1');
}

function manOptions(spec: Spec, docs: Record<string, OptDoc>): string[] {
  const out: string[] = [];
  for (const [name, o] of Object.entries(spec)) {
    const d = docs[name];
    out.push('.TP', `.B ${roff(optionLabel(name, o, d))}`, roff(`${d?.help ?? ''}${optionNotes(o, d)}`));
  }
  return out;
}

export function manPage(version: string): string {
  const lines: string[] = [
    `.TH PGBACKUP 1 "" "pgbackup ${roff(version)}" "User Commands"`,
    '.SH NAME',
    'pgbackup \\- PostgreSQL backups to S3 or a folder, gzip\\-compressed and age\\-encrypted',
    '.SH SYNOPSIS',
    ...[...Object.values(DOCS).map((d) => d.synopsis), ...Object.values(EXTRA_COMMANDS).map((d) => d.synopsis)].flatMap((s) => ['.B', roff(s), '.br']),
    '.SH DESCRIPTION',
    roff('pgbackup streams pg_dump through gzip and age into S3 (multipart upload) or a folder, and restores such backups in one transaction, checking the age key before it touches the target. S3 lifecycle rules do retention; the backup job never deletes anything.'),
    '.SH COMMANDS',
  ];
  for (const [cmd, d] of Object.entries(DOCS)) {
    lines.push(`.SS ${roff(cmd)}`, '.B', roff(d.synopsis), '.PP', roff(d.about), ...manOptions(specOf(cmd), d.options));
  }
  for (const [cmd, d] of Object.entries(EXTRA_COMMANDS)) lines.push(`.SS ${roff(cmd)}`, '.B', roff(d.synopsis), '.PP', roff(d.summary));
  lines.push('.SH COMMON OPTIONS', ...manOptions(COMMON, COMMON_DOCS));
  lines.push('.SH ENVIRONMENT', roff('A flag wins over its variable.'));
  for (const [k, v] of ENVIRONMENT) lines.push('.TP', `.B ${roff(k)}`, roff(v));
  lines.push('.SH EXIT STATUS');
  for (const [k, v] of EXIT_CODES) lines.push('.TP', `.B ${roff(k)}`, roff(v));
  lines.push('.SH SEE ALSO', '.BR pg_dump (1),', '.BR psql (1),', '.BR age (1)', '.PP', roff('The documentation in the docs/ folder of the package.'), '');
  return lines.join('\n');
}

/** `pgbackup help [COMMAND]` and `pgbackup completion bash|zsh`: returns the exit code. */
export function helpOrCompletion(argv: string[], out: (s: string) => void, err: (s: string) => void): number {
  const [verb, arg, ...rest] = argv;
  if (verb === 'help') {
    if (arg === undefined) {
      out(mainHelp() + '\n');
      return 0;
    }
    if (rest.length === 0 && DOCS[arg]) {
      out(commandHelp(arg) + '\n');
      return 0;
    }
    if (rest.length === 0 && EXTRA_COMMANDS[arg]) {
      out(`Usage: ${EXTRA_COMMANDS[arg].synopsis}\n\n${EXTRA_COMMANDS[arg].summary}\n`);
      return 0;
    }
    const near = rest.length === 0 ? closest(arg, Object.keys(COMMANDS)) : undefined;
    err(`pgbackup: help: unknown command "${[arg, ...rest].join(' ')}"${near ? ` (did you mean "${near}"?)` : ''} (expected one of: ${Object.keys(COMMANDS).join(', ')})\n`);
    return 2;
  }
  if (arg === 'bash' && rest.length === 0) {
    out(bashCompletion());
    return 0;
  }
  if (arg === 'zsh' && rest.length === 0) {
    out(zshCompletion());
    return 0;
  }
  if (arg === '--help' || arg === '-h') {
    out(`Usage: ${EXTRA_COMMANDS.completion!.synopsis}\n`);
    return 0;
  }
  err('pgbackup: completion: expected "bash" or "zsh"\n');
  return 2;
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** The option reference of docs/cli.md (between its generated-block markers; `npm run docs` rewrites it). */
export function markdownOptions(): string {
  const out: string[] = [];
  const table = (spec: Spec, docs: Record<string, OptDoc>) => {
    out.push('| option | meaning | default | environment |', '|---|---|---|---|');
    for (const [name, o] of Object.entries(spec)) {
      const d = docs[name];
      const label = optionLabel(name, o, d);
      out.push(`| \`${mdCell(label)}\`${o.multiple ? ' (repeatable)' : ''} | ${mdCell(d?.help ?? '')} | ${d?.default ? mdCell(d.default) : ''} | ${d?.env ? mdCell(d.env) : ''} |`);
    }
  };
  for (const [cmd, d] of Object.entries(DOCS)) {
    out.push(`### ${cmd}`, '', '```', d.synopsis, '```', '', d.about, '');
    table(specOf(cmd), d.options);
    out.push('');
  }
  out.push('### common options (every command)', '');
  table(COMMON, COMMON_DOCS);
  return out.join('\n');
}

export const DOCS_BEGIN = '<!-- generated from src/clidocs.ts by `npm run docs`: begin -->';
export const DOCS_END = '<!-- generated: end -->';
