/** `pgbackup fetch KEY [-o FILE|-]`: the decrypted SQL, for a look before a restore. */
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Parsed } from './cli.js';
import { fetchConfig } from './config.js';
import type { Context } from './context.js';
import { locate, openBackup } from './reader.js';
import { classifyReadError, decryptSecrets, loadSecrets } from './restore.js';
import { StorageError, firstError } from './errors.js';

export async function fetchCommand(ctx: Context, parsed: Parsed): Promise<number> {
  const cfg = fetchConfig(parsed, ctx.env);
  const secrets = await loadSecrets(cfg);
  const located = await locate(ctx, cfg.target, cfg.key);
  const opened = await openBackup(ctx, located, decryptSecrets(secrets));
  const toStdout = cfg.output === '-';
  const tmp = toStdout ? '' : `${cfg.output}.partial-${process.pid}`;
  const sink: Writable = toStdout ? process.stdout : createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
  try {
    await pipeline([...opened.stages, sink], { signal: ctx.signal, end: !toStdout });
    if (!toStdout) await rename(tmp, cfg.output);
  } catch (e) {
    if (!toStdout) await unlink(tmp).catch(() => undefined);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const c = classifyReadError(e);
    if ((c as NodeJS.ErrnoException)?.syscall) throw new StorageError('WRITE', `cannot write ${cfg.output}: ${(c as Error).message}`);
    throw firstError([c]);
  }
  ctx.log.info({ key: located.display, bytes: opened.measure.bytes }, 'fetched');
  return 0;
}
