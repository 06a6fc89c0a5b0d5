/** `pgbackup backup`: configuration from flags and environment, then the operation. */
import type { Parsed } from '../cli/args.js';
import { backupConfig } from '../config/config.js';
import { backup } from '../ops/backup.js';
import type { Context } from '../support/context.js';

export async function backupCommand(ctx: Context, parsed: Parsed): Promise<void> {
  await backup(ctx, backupConfig(parsed, ctx.env));
}
