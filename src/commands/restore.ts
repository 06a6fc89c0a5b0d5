/** `pgbackup restore`: configuration from flags and environment, then the operation. */
import type { Parsed } from '../cli/args.js';
import { restoreConfig } from '../config/config.js';
import { restore } from '../ops/restore.js';
import type { Context } from '../support/context.js';

export async function restoreCommand(ctx: Context, parsed: Parsed): Promise<void> {
  await restore(ctx, restoreConfig(parsed, ctx.env));
}
