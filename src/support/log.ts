import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';

export type { Logger };

export interface LogOptions {
  format: 'json' | 'pretty';
  level: string;
  /** Called just before each log line is written (a terminal's progress line is erased there). */
  beforeWrite?: (() => void) | undefined;
}

/** Paths pino blanks out wherever they appear in a log record. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'passphrase',
  '*.passphrase',
  'identity',
  '*.identity',
  'identities',
  '*.identities',
  'secretAccessKey',
  '*.secretAccessKey',
  'sessionToken',
  '*.sessionToken',
  'env.PGPASSWORD',
  'env.AWS_SECRET_ACCESS_KEY',
  'env.AWS_SESSION_TOKEN',
];

/** Logs go to stderr (stdout is for data: `fetch -o -`, `list --json`, `keygen`). */
export function createLogger(opts: LogOptions): Logger {
  const hook = opts.beforeWrite;
  const base = {
    level: opts.level,
    base: undefined,
    // ISO 8601 ("time":"2026-11-29T12:00:00.000Z"), not epoch milliseconds: readable as it is.
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (opts.format === 'pretty') {
    // Loaded only for pretty logs: it costs every other run (JSON logs, cron) ~0.1 s of start-up.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    const stream = pretty({
      destination: hook ? stderrWith(hook) : 2,
      sync: true,
      colorize: Boolean(process.stderr.isTTY),
      ignore: 'pid,hostname',
      translateTime: 'SYS:HH:MM:ss',
    });
    return pino(base, stream);
  }
  const dest = pino.destination({ fd: 2, sync: true });
  if (!hook) return pino(base, dest);
  return pino(base, {
    write: (line: string) => {
      hook();
      dest.write(line);
    },
  });
}

/** stderr (the same stream the progress line is drawn on, so the two keep their order), with `hook` run before each write. */
function stderrWith(hook: () => void): Writable {
  return new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      hook();
      process.stderr.write(chunk, (e) => cb(e ?? null));
    },
  });
}

export function defaultLogFormat(): 'json' | 'pretty' {
  return process.stderr.isTTY ? 'pretty' : 'json';
}
