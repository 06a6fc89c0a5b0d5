/**
 * One error class per exit code (DESIGN.md "Exit codes"). Only main.ts turns them into exit codes.
 * Third-party errors are wrapped where they enter our code, keeping the original as `cause`.
 */
export abstract class PgBackupError extends Error {
  abstract readonly exitCode: number;
  readonly code: string;
  /** For a failed child process (pg_dump, pg_dumpall, psql): what the supervisor saw. */
  readonly process: ProcessFacts | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; process?: ProcessFacts }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.name = new.target.name;
    this.process = options?.process;
  }
}

/**
 * The facts of a child process's run (pipeline/process.ts collects them), carried on the
 * DumpError or RestoreError that reports its failure, as data rather than only message text.
 */
export interface ProcessFacts {
  /** The program's name: pg_dump, pg_dumpall, psql. */
  command: string;
  /** null when it was killed by a signal or could not be started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Killed by the stall guard (it wrote nothing for too long). */
  stalled: boolean;
  /** Killed because the run was cancelled (interrupt, timeout, another stage failed). */
  cancelled: boolean;
  /** The last lines it wrote to stderr, secrets scrubbed. */
  stderrTail: string;
  /** Why it could not be started (ENOENT, EACCES), when it could not. */
  spawnError: string | undefined;
}

/** 1: a bug. The message says so. */
export class InternalError extends PgBackupError {
  readonly exitCode = 1;
}

/** 2: usage or configuration error; `problems` names every bad field. */
export class UsageError extends PgBackupError {
  readonly exitCode = 2;
  readonly problems: string[];
  constructor(problems: string[] | string, options?: { cause?: unknown; code?: string }) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(options?.code ?? 'USAGE', list.join('\n'), options);
    this.problems = list;
  }
}

/** 3: pg_dump failed, could not connect, auth failed, no suitable pg_dump. */
export class DumpError extends PgBackupError {
  readonly exitCode = 3;
}

/** 4: storage failed (S3 or folder). */
export class StorageError extends PgBackupError {
  readonly exitCode = 4;
}

/** 5: no identity matches, wrong passphrase, data truncated or tampered. */
export class CryptoError extends PgBackupError {
  readonly exitCode = 5;
}

/** 6: restore failed (psql error); the target is as it was before. */
export class RestoreError extends PgBackupError {
  readonly exitCode = 6;
}

/** 7: verification mismatch. */
export class VerifyError extends PgBackupError {
  readonly exitCode = 7;
}

/**
 * 8: freshness check failed (`status --max-age`): a database's newest complete full backup is
 * older than allowed, or there is none.
 */
export class StaleError extends PgBackupError {
  readonly exitCode = 8;
}

/** 130 / 143: interrupted. */
export class InterruptedError extends PgBackupError {
  readonly exitCode: number;
  constructor(signal: string, message?: string) {
    super('INTERRUPTED', message ?? `interrupted by ${signal}`);
    this.exitCode = signal === 'SIGINT' ? 130 : 143;
  }
}

export function isPgBackupError(e: unknown): e is PgBackupError {
  return e instanceof PgBackupError;
}

/** The message of any thrown value, without a stack. */
/** Whether `test` holds for `e` or an error in its cause chain (a few levels deep). */
export function anyCause(e: unknown, test: (x: unknown) => boolean): boolean {
  for (let x: unknown = e, i = 0; x && i < 5; x = (x as { cause?: unknown }).cause, i++) {
    if (test(x)) return true;
  }
  return false;
}

export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

/**
 * Pick the error to report when a pipeline fails: an interruption first (the other errors are
 * its consequences), else the first typed error, which wins over generic stream errors
 * (ERR_STREAM_PREMATURE_CLOSE and the like are consequences, not causes), else the first one.
 */
export function firstError(errors: unknown[]): unknown {
  const typed = errors.find((e) => e instanceof PgBackupError && !(e instanceof InterruptedError));
  const interrupted = errors.find((e) => e instanceof InterruptedError);
  return interrupted ?? typed ?? errors[0];
}

/** A zlib error (Node sets `code` to zlib's Z_* name: Z_BUF_ERROR for input cut short, Z_DATA_ERROR). */
export function isZlibError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

/**
 * The one classification of a failure while reading a backup's data, for every command that
 * reads one (restore, fetch, verify): typed errors stay as they are; a gzip stream that is cut
 * short or damaged means damaged data, exit 5 like a damaged age payload (DESIGN.md: "data
 * truncated or tampered"); anything else is left for `classify` (a bug unless typed).
 */
export function classifyData(e: unknown): unknown {
  if (e instanceof PgBackupError) return e;
  if (isZlibError(e)) return new CryptoError('CORRUPT', `the backup's data is truncated or damaged (gzip: ${messageOf(e)})`, { cause: e });
  return e;
}

/** Any failure as a classified error: typed ones as they are, damaged data as such, the rest a bug. */
export function classify(e: unknown): PgBackupError {
  const c = classifyData(e);
  if (c instanceof PgBackupError) return c;
  return new InternalError('BUG', `unexpected failure (this is a bug in pgbackup; please report it): ${messageOf(e)}`, { cause: e });
}

/** The classes a finding can have, from least to most severe: a run reports the worst. */
export type ErrorClass = typeof VerifyError | typeof StorageError | typeof RestoreError | typeof CryptoError | typeof DumpError | typeof InternalError;
const SEVERITY: ReadonlyArray<ReadonlyArray<ErrorClass>> = [[VerifyError], [StorageError, RestoreError], [CryptoError], [DumpError, InternalError]];

function severity(c: ErrorClass | null): number {
  return c === null ? -1 : SEVERITY.findIndex((tier) => tier.includes(c));
}

/** The worse of two findings (null: none); the first on a tie. */
export function worseClass(a: ErrorClass | null, b: ErrorClass | null): ErrorClass | null {
  return severity(b) > severity(a) ? b : a;
}

/** The class of an error, for ranking: one of ErrorClass (usage errors and interruptions are never findings). */
export function classOf(e: PgBackupError): ErrorClass {
  for (const tier of SEVERITY) for (const c of tier) if (e instanceof c) return c;
  return InternalError;
}

/** The exit code a class stands for (a report's field; only main.ts exits). */
export function exitCodeOfClass(c: ErrorClass | null): number {
  return c === null ? 0 : new c('PROBE', '').exitCode;
}
