/**
 * One error class per exit code (DESIGN.md "Exit codes"). Only main.ts turns them into exit codes.
 * Third-party errors are wrapped where they enter our code, keeping the original as `cause`.
 */
export abstract class PgBackupError extends Error {
  abstract readonly exitCode: number;
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
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
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

/**
 * Pick the error to report when a pipeline fails: the first typed error wins over generic
 * stream errors (ERR_STREAM_PREMATURE_CLOSE and the like are consequences, not causes).
 */
export function firstError(errors: unknown[]): unknown {
  const typed = errors.find((e) => e instanceof PgBackupError && !(e instanceof InterruptedError));
  const interrupted = errors.find((e) => e instanceof InterruptedError);
  return interrupted ?? typed ?? errors[0];
}
