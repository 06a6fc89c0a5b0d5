/** Entry point: signals -> root AbortController; run one command; error -> exit code. */
import { parseCli, type Parsed } from './cli/args.js';
import { commandHelp, helpOrCompletion, mainHelp } from './clidocs.js';
import { type Context, toolVersion } from './support/context.js';
import { InterruptedError, UsageError, InternalError, classify, messageOf } from './support/errors.js';
import type { Logger } from './support/log.js';
import { createProgress, TermLine, type Progress } from './support/progress.js';
import { scrub } from './support/secret.js';
import { commandLinePasswords } from './pg/conninfo.js';
/** A command returns nothing: it succeeds, or it throws. */
type Command = (ctx: Context, p: Parsed) => Promise<void>;
// Commands load on demand: `keygen` or a folder backup need not load the AWS SDK.
const RUN: Record<string, () => Promise<Command>> = {
  backup: async () => (await import('./commands/backup.js')).backupCommand,
  list: async () => (await import('./commands/list.js')).listCommand,
  restore: async () => (await import('./commands/restore.js')).restoreCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
  fetch: async () => (await import('./commands/fetch.js')).fetchCommand,
  keygen: async () => (await import('./commands/keygen.js')).keygenCommand,
  bucket: async () => (await import('./commands/bucket.js')).bucketCommand,
  prune: async () => (await import('./commands/prune.js')).pruneCommand,
  status: async () => (await import('./commands/status.js')).statusCommand,
  rekey: async () => (await import('./commands/rekey.js')).rekeyCommand,
};

function secretsOf(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const k of ['PGPASSWORD', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) if (env[k]) out.push(env[k]);
  for (const url of [env.DATABASE_URL, ...process.argv]) {
    const m = url ? /^postgres(?:ql)?:\/\/[^:/@]*:([^@]*)@/i.exec(url) : null;
    if (m?.[1]) {
      out.push(m[1]);
      try {
        out.push(decodeURIComponent(m[1]));
      } catch {
        /* keep the raw form */
      }
    }
  }
  return out;
}

/**
 * stdout closed by its reader (`pgbackup list | head -1`) is a normal end: what follows is not
 * written, the command finishes and exits with its own code; never a stack trace.
 */
let stdoutClosed = false;
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (!stdoutClosed && e.code !== 'EPIPE') process.stderr.write(`pgbackup: cannot write to stdout: ${messageOf(e)}\n`);
  stdoutClosed = true;
});
/** The terminal's progress line, when stderr is one (results on the same terminal erase it first). */
let termLine: TermLine | undefined;
const toStdout = (t: string) => {
  if (process.stdout.isTTY) termLine?.clear();
  if (!stdoutClosed) process.stdout.write(t);
};

/** The signal that interrupted the run, for the last-resort exit below. */
let interruptedBy: InterruptedError | undefined;

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const root = new AbortController();
  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => {
    if (root.signal.aborted) return;
    interruptedBy = new InterruptedError(sig);
    root.abort(interruptedBy);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  let log: Logger | undefined;
  let progress: Progress | undefined;
  const secrets = secretsOf(env);
  // A password in a connection string on the command line: mask it in what `ps` shows (process.title
  // rewrites the command line Linux reports; it was visible until this line ran) and warn below.
  const argvPasswords = commandLinePasswords(argv);
  if (argvPasswords.flags.length) process.title = ['pgbackup', ...argvPasswords.masked].join(' ');
  const report = (e: unknown): number => {
    // No progress line left half-drawn in front of the message (an interrupt mid-step).
    progress?.close();
    const err = classify(e);
    const msg = scrub(err.message, secrets);
    if (log && !(err instanceof UsageError)) {
      log.error({ code: err.code, exitCode: err.exitCode }, msg);
      if (err instanceof InternalError && e instanceof Error && env.PGBACKUP_DEBUG) process.stderr.write(`${e.stack}\n`);
    } else if (err instanceof UsageError) {
      process.stderr.write(`pgbackup: ${err.problems.length > 1 ? 'configuration errors:\n  ' + err.problems.map((p) => scrub(p, secrets)).join('\n  ') : msg}\n`);
      process.stderr.write('Run "pgbackup --help" for usage.\n');
    } else {
      process.stderr.write(`pgbackup: ${msg}\n`);
    }
    return err.exitCode;
  };

  if (argv[0] === 'help' || argv[0] === 'completion') {
    return helpOrCompletion(argv, toStdout, (t) => process.stderr.write(t));
  }
  let parsed: Parsed;
  try {
    parsed = parseCli(argv);
  } catch (e) {
    return report(e);
  }
  if (parsed.values.version) {
    toStdout(`pgbackup ${toolVersion()}\n`);
    return 0;
  }
  if (parsed.command === null) {
    toStdout(mainHelp() + '\n');
    return parsed.values.help ? 0 : 2;
  }
  if (parsed.values.help) {
    toStdout(commandHelp(parsed.command) + '\n');
    return 0;
  }
  try {
    // Loaded only once a command runs: --version, --help and completion need neither zod nor pino.
    const [{ commonConfig }, { createLogger, defaultLogFormat }] = await Promise.all([import('./config/config.js'), import('./support/log.js')]);
    const common = commonConfig(parsed, env);
    // On a terminal the progress line and the logs share stderr: a log line erases the progress line first.
    const line = (termLine = process.stderr.isTTY ? new TermLine((t) => process.stderr.write(t), () => process.stderr.columns) : undefined);
    log = createLogger({ format: common.logFormat ?? defaultLogFormat(), level: common.logLevel, beforeWrite: line ? () => line.clear() : undefined });
    // A terminal gets the line, JSON logs the events; pretty logs to a file, --quiet and levels above info nothing.
    progress = createProgress({
      mode: common.quiet || !log.isLevelEnabled('info') ? 'off' : line ? 'tty' : (common.logFormat ?? defaultLogFormat()) === 'json' ? 'json' : 'off',
      log,
      intervalMs: common.progressIntervalMs,
      line,
    });
    for (const f of argvPasswords.flags) {
      log.warn(`${f}: the connection string holds a password, which other local users can see on the command line (ps, /proc) while pgbackup starts and in shell history; give it through DATABASE_URL, PGPASSFILE (~/.pgpass) or PGPASSWORD instead`);
    }
    const ctx: Context = {
      log,
      signal: root.signal,
      env,
      out: toStdout,
      isTTY: Boolean(process.stderr.isTTY) && !common.quiet,
      progress: progress.start,
    };
    await (await RUN[parsed.command]!())(ctx, parsed);
    progress.close();
    if (root.signal.aborted) return report(root.signal.reason);
    return 0;
  } catch (e) {
    if (root.signal.aborted && root.signal.reason instanceof InterruptedError) return report(root.signal.reason);
    return report(e);
  }
}

// Node leaves with code 0 when nothing is left to wait for, even if the run never finished (a
// promise nobody will settle): for a backup tool that would be a silent success. Never: such an
// end says so and exits non-zero (the signal's code when one interrupted the run).
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  const code = interruptedBy ? interruptedBy.exitCode : 1;
  process.stderr.write(
    interruptedBy
      ? `pgbackup: ${interruptedBy.message}; the run stopped before it had cleaned up (an incomplete S3 upload is removed by the bucket's lifecycle rule)\n`
      : 'pgbackup: unexpected failure (this is a bug): the run stopped before it finished; nothing it was doing can be trusted\n',
  );
  process.exit(code);
});

main(process.argv.slice(2), process.env).then(
  (code) => {
    settled = true;
    process.exitCode = code;
    // Leave once stdout and stderr have handed everything to the OS (a piped `list --json` of
    // 1100 backups was cut short by an early exit on Node 24), even if a stray handle remains.
    let open = 2;
    const drained = () => {
      if (--open === 0) setTimeout(() => process.exit(code), 50).unref();
    };
    if (stdoutClosed) drained();
    else process.stdout.write('', drained);
    process.stderr.write('', drained);
  },
  (e) => {
    settled = true;
    process.stderr.write(`pgbackup: unexpected failure (this is a bug): ${messageOf(e)}\n`);
    process.exit(1);
  },
);
