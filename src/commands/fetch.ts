/** `pgbackup fetch KEY [-o FILE|-]`: the decrypted SQL, for a look before a restore. */
import { createWriteStream } from 'node:fs';
import { link, lstat, rename, stat, unlink } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Parsed } from '../cli/args.js';
import { fetchConfig } from '../config/config.js';
import type { Context } from '../support/context.js';
import { locate, openBackup } from '../ops/open.js';
import { decryptSecrets, loadSecrets } from '../ops/restore.js';
import { StorageError, UsageError, classifyData, firstError } from '../support/errors.js';

export async function fetchCommand(ctx: Context, parsed: Parsed): Promise<void> {
  const cfg = fetchConfig(parsed, ctx.env);
  const secrets = await loadSecrets(cfg);
  const toStdout = cfg.output === '-';
  // A device, FIFO or socket (-o /dev/null, -o /dev/stdout, a named pipe) is written into as it
  // is: it holds no file to replace. Only a regular file goes through a temporary file and a
  // rename; renamed over /dev/null, that would put the SQL in a file where the device was.
  const target = toStdout ? null : await stat(cfg.output).catch(() => null);
  if (target?.isDirectory()) throw new UsageError(`-o ${cfg.output}: is a folder; give a file name`);
  const inPlace = target !== null && !target.isFile();
  if (!toStdout && !inPlace && !cfg.force && (await lstat(cfg.output).catch(() => null))) {
    throw new UsageError(`-o ${cfg.output}: the file exists; give --force to replace it`);
  }
  const located = await locate(ctx, cfg.target, cfg.key);
  const opened = await openBackup(ctx, located, decryptSecrets(secrets), 'fetch');
  const tmp = toStdout || inPlace ? '' : `${cfg.output}.partial-${process.pid}`;
  const sink: Writable = toStdout ? process.stdout : inPlace ? createWriteStream(cfg.output, { flags: 'w' }) : createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
  try {
    await pipeline([...opened.stages, sink], { signal: ctx.signal, end: !toStdout });
    if (tmp) {
      if (cfg.force) await rename(tmp, cfg.output);
      else {
        // link() refuses to replace a file that appeared meanwhile.
        await link(tmp, cfg.output).catch((le: NodeJS.ErrnoException) => {
          throw le.code === 'EEXIST' ? new UsageError(`-o ${cfg.output}: the file exists; give --force to replace it`) : le;
        });
        await unlink(tmp);
      }
    }
  } catch (e) {
    if (tmp) await unlink(tmp).catch(() => undefined);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    // The reader of stdout had enough (`pgbackup fetch KEY | head`): a normal end.
    if (toStdout && (e as NodeJS.ErrnoException)?.code === 'EPIPE') {
      ctx.log.info({ key: located.display }, 'stdout was closed by its reader; fetch stopped');
      return;
    }
    const c = classifyData(e);
    if ((c as NodeJS.ErrnoException)?.syscall) throw new StorageError('WRITE', `cannot write ${cfg.output}: ${(c as Error).message}`);
    throw firstError([c]);
  }
  ctx.log.info({ key: located.display, bytes: opened.measure.bytes }, 'fetched');
}
