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

export const COMMANDS: Record<string, { spec: Spec; positionals: number; usage: string }> = {
  backup: {
    positionals: 0,
    spec: {
      database: S, to: M, recipient: M, 'recipients-file': S, 'passphrase-file': S, 'no-encryption': B,
      'compress-level': S, tier: S, schema: M, 'exclude-schema': M, table: M, 'exclude-table': M,
      'exclude-table-data': M, 'column-inserts': B, 'no-owner': B, 'no-privileges': B,
      'all-databases': B, globals: B, 'part-size': S, 'queue-size': S, timeout: S, 'stall-timeout': S,
      'healthcheck-url': S, 'webhook-url': S, prometheus: S,
    },
    usage: `pgbackup backup [options]

Dump a database with pg_dump, compress it (gzip), encrypt it (age) and store it.

Source:
  --database URL            postgres://user:pass@host:port/db (else DATABASE_URL, else PG* variables)
  --all-databases           every non-template database, each into its own object
  --globals                 also roles and tablespaces (pg_dumpall --globals-only), as "_globals"
Target:
  --to TARGET               s3://bucket/prefix/ or a folder (else PGBACKUP_TARGET, else ./backups);
                            repeatable: one dump, the same bytes stored in every target
Encryption (one is required):
  --recipient AGE_KEY       age public key (age1... or age1pq1...); repeatable (PGBACKUP_RECIPIENTS)
  --recipients-file F       file of age public keys, one a line (PGBACKUP_RECIPIENTS_FILE)
  --passphrase-file F       encrypt with the passphrase in F (scrypt) (PGBACKUP_PASSPHRASE_FILE)
  --no-encryption           store the dump unencrypted (.sql.gz)
Dump:
  --compress-level 0-9      gzip level (default 6; 0 stores .sql, uncompressed)
  --tier auto|daily|weekly|monthly|yearly   retention tier tag (default auto)
  --schema P  --exclude-schema P  --table P  --exclude-table P  --exclude-table-data P   (repeatable)
  --column-inserts  --no-owner  --no-privileges          passed to pg_dump
Upload and safety:
  --part-size SIZE          S3 multipart part size (default 8MiB; PGBACKUP_S3_PART_SIZE; grows with the database)
  --queue-size N            parts uploaded at once (PGBACKUP_S3_QUEUE_SIZE, default 3)
  --timeout DURATION        give up after this long, e.g. 2h (exit 3 or 4, nothing stored)
  --stall-timeout DURATION  kill pg_dump when it writes nothing for this long (default 10m)
  --healthcheck-url URL     ping URL/start, URL on success, URL/fail on failure
  --webhook-url URL         POST a JSON summary when done`,
  },
  list: {
    positionals: 0,
    spec: { from: S, database: S, json: B },
    usage: `pgbackup list [--from TARGET] [--database NAME] [--json]

List backups, newest first: key, database, time, size, tier, kind (full; partial: made with
--schema/--table/--exclude-*; safety: taken before a --clean restore) and whether each is
complete. --json adds ageSeconds, and the filters of a partial backup or the restore a safety
backup protects.`,
  },
  restore: {
    positionals: 1,
    spec: {
      latest: B, at: S, from: S, database: S, to: S, identity: M, 'passphrase-file': S, create: B,
      'db-encoding': S, 'db-locale': S, 'create-with-defaults': B, 'apply-database-properties': B,
      clean: B, 'no-safety-backup': B, yes: B, 'no-owner': B, json: B, 'any-kind': B, 'lock-timeout': S,
      jobs: S, 'terminate-connections': B, list: B, table: M, schema: M, 'exclude-table': M,
    },
    usage: `pgbackup restore [KEY | FILE | --latest | --at TIME] --to URL [options]

Restore a backup into a database with psql, in one transaction (ON_ERROR_STOP).

Which backup:
  KEY                       a key under the target, or a local .sql, .sql.gz, .sql.age or .sql.gz.age file
  --latest                  the newest complete full backup of --database
  --at TIME                 the newest complete full backup at or before TIME (ISO 8601; UTC unless
                            it names a zone; a date alone means the end of that day, UTC)
  --any-kind                let --latest / --at pick safety and partial backups too
  --from TARGET             where backups are (else PGBACKUP_TARGET, else ./backups)
  --database NAME           which database's backups (default: the target database's name)
Target:
  --to URL                  the database to restore into (required: the target is never taken
                            from DATABASE_URL or PG* variables)
  --create                  create the target database when it does not exist
  --clean                   replace the contents of a target that already has tables
  --yes                     confirm --clean when not on a terminal
  --no-safety-backup        skip the backup of the target taken before --clean
  --no-owner                do not fail on ownership of roles the target lacks
  --lock-timeout DURATION   give up when a lock is not granted within this time (default 1m):
                            exit 6 naming the sessions holding locks on the target, nothing changed
                            (--terminate-connections ends them first, after the confirmation)
Look inside:
  --list                    print the backup's entries and restore nothing: one a line, tab-separated
                            type, schema, name, owner, rows (of each table's data); --json: one document
Selective restore (one transaction; objects that exist in the target are replaced, with --clean):
  --table SCHEMA.NAME       restore this table: definition, data, indexes, constraints, triggers,
                            rules, policies, grants, comments, its sequences; partitions of a
                            partitioned table come along (repeatable; * and ? match any characters
                            and one character; "quote" a part to keep case, dots and spaces)
  --schema NAME             restore this schema and everything in it (repeatable; patterns as above)
  --exclude-table SCHEMA.NAME
                            leave this table out of what --table / --schema select (repeatable)
                            A foreign key or partition attachment to a table not restored is left out
                            and named; anything else in the target that depends on a replaced object
                            stops the restore before it changes anything (exit 6)
Parallel restore:
  --jobs N                  load over N psql sessions (default 1: one session, one transaction).
                            With N > 1 table data loads concurrently (long tables in chunks) and
                            indexes and constraints are built concurrently. Atomic per database:
                            into a database --create makes (dropped on failure), or over an
                            existing one into a staging database that replaces it by rename at
                            the end; the old one is kept under a name the restore prints (no
                            safety backup is taken: the old database is the safety copy)
  --terminate-connections   end other sessions on the target before replacing it (else the
                            cut-over waits for none and fails naming them)
Database properties (encoding, locale, owner, ACL, settings, comment, security labels):
  --create makes the database with the source's encoding and locale and applies the rest; when
  this server lacks the locale (or encoding) it stops before changing anything, with exit 2.
  --db-encoding ENC         --create: this encoding instead of the source's
  --db-locale LOCALE        --create: this libc locale (LC_COLLATE and LC_CTYPE) instead of the source's
  --create-with-defaults    --create: the cluster's default encoding and locale (template0's)
  --apply-database-properties
                            with --clean into an existing database: apply the source's owner, ACL,
                            settings, comment and security labels (else the target keeps its own)
Secrets:
  --identity FILE           age identity file (repeatable) (PGBACKUP_IDENTITY_FILE)
  --passphrase-file F       passphrase (PGBACKUP_PASSPHRASE_FILE)`,
  },
  verify: {
    positionals: 1,
    spec: { latest: B, all: B, from: S, database: S, identity: M, 'passphrase-file': S, 'restore-into': S, json: B, 'any-kind': B, prometheus: S },
    usage: `pgbackup verify [KEY | --latest | --all] [--from TARGET] [--database NAME] [--identity FILE]...
                [--restore-into URL] [--json]

Read backups back: checksum, every age chunk, gzip CRCs, the dump's completion marker and the row
counts of every table against the manifest. --restore-into also restores into a scratch database
on that server, compares row counts, and drops it. --latest takes what restore --latest would
(the newest full backup; --any-kind: of any kind). Nothing to verify (an empty or mistyped
--from, no backup of --database) exits 4.`,
  },
  fetch: {
    positionals: 1,
    spec: { from: S, identity: M, 'passphrase-file': S, output: { type: 'string', short: 'o' }, force: B },
    usage: `pgbackup fetch KEY [--from TARGET] [--identity FILE]... [-o FILE|-] [--force]

Write a backup's decrypted, decompressed SQL to FILE or stdout. An existing FILE is refused
(exit 2) unless --force; FILE appears only once the whole backup was read and checked.`,
  },
  keygen: {
    positionals: 0,
    spec: { pq: B, output: { type: 'string', short: 'o' } },
    usage: `pgbackup keygen [--pq] [-o FILE]

Create an age identity. With -o, write it to FILE (mode 0600, never overwriting) and print the
public key; without, print the identity file to stdout and the public key to stderr.
--pq makes a post-quantum hybrid identity (age1pq1... recipient).`,
  },
  bucket: {
    positionals: 1,
    spec: { to: S, from: S, apply: B, json: B },
    usage: `pgbackup bucket check | lifecycle [--apply] [--to s3://bucket/prefix/]

check      report versioning, encryption, public access block, TLS-only policy, object lock, lifecycle
lifecycle  print the lifecycle rules for the retention settings; --apply writes them`,
  },
  prune: {
    positionals: 0,
    spec: { from: S, database: S, apply: B, json: B },
    usage: `pgbackup prune [--from FOLDER] [--database NAME] [--apply] [--json]

Apply the tier retention (PGBACKUP_KEEP_*_DAYS) to a folder target, and remove incomplete dumps
and partial files idle for over a day. Dry run unless --apply. Never deletes the newest complete
full backup of a database. S3 targets are refused (exit 2): use bucket lifecycle.`,
  },
  status: {
    positionals: 0,
    spec: { from: S, database: M, 'max-age': S, json: B, prometheus: S },
    usage: `pgbackup status [--from TARGET] [--database NAME]... [--max-age DURATION] [--json]

Per database: the newest complete full backup (key, age, size, tier, duration), the newest
verified one and the size trend. --max-age exits 8 when a database's newest full backup is
older, or a database named with --database has none.`,
  },
};

export const MAIN_USAGE = `pgbackup: PostgreSQL backups to S3 or a folder, gzip-compressed and age-encrypted.

Usage: pgbackup <command> [options]

Commands:
  backup     dump, compress, encrypt and store a database
  list       list stored backups
  restore    restore a backup into a database, safely
  verify     prove that backups are whole and restorable
  fetch      write a backup's decrypted SQL to a file or stdout
  keygen     create an age identity
  bucket     check an S3 bucket, print or apply lifecycle rules
  prune      apply the retention to a folder target
  status     newest and newest verified backup per database; freshness check

Common options:
  --log-format json|pretty  --log-level LEVEL  --quiet  --help  --version

Run "pgbackup <command> --help" for a command's options. Exit codes: 0 done, 1 bug,
2 usage/configuration, 3 dump failed, 4 storage failed, 5 crypto, 6 restore failed,
7 verification mismatch, 8 stale (status --max-age), 130/143 interrupted.`;

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
    if (o.type === 'string' && t.value === undefined) problems.push(`${t.rawName} needs a value`);
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
