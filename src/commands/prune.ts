/** `pgbackup prune`: configuration from flags and environment, then the operation. */
import type { Parsed } from '../cli/args.js';
import { pruneConfig } from '../config/config.js';
import { prune } from '../ops/prune.js';
import type { Context } from '../support/context.js';

export async function pruneCommand(ctx: Context, parsed: Parsed): Promise<void> {
  await prune(ctx, pruneConfig(parsed, ctx.env));
}
