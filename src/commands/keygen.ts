/** `pgbackup keygen`: a new age identity, written with mode 0600; prints its public key. */
import { open } from 'node:fs/promises';
import type { Parsed } from '../cli/args.js';
import { keygenConfig } from '../config/config.js';
import type { Context } from '../support/context.js';
import { generateIdentityFile } from '../crypto/age.js';
import { UsageError, StorageError, messageOf } from '../support/errors.js';

export async function keygenCommand(ctx: Context, parsed: Parsed): Promise<void> {
  const cfg = keygenConfig(parsed);
  const { recipient, text } = await generateIdentityFile(cfg.pq);
  if (!cfg.output || cfg.output === '-') {
    ctx.out(text);
    process.stderr.write(`Public key: ${recipient}\n`);
    return;
  }
  let h;
  try {
    h = await open(cfg.output, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UsageError(`-o ${cfg.output}: the file exists; pgbackup never overwrites an identity`);
    throw new StorageError(code ?? 'WRITE', `-o ${cfg.output}: cannot create it: ${messageOf(e)}`);
  }
  try {
    await h.writeFile(text);
    await h.sync();
  } finally {
    await h.close();
  }
  ctx.out(`${recipient}\n`);
}
