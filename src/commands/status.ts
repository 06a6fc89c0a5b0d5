/** `pgbackup status`: configuration from flags and environment, then the operation. */
import type { Parsed } from '../cli/args.js';
import { statusConfig } from '../config/config.js';
import { status } from '../ops/status.js';
import type { Context } from '../support/context.js';

export async function statusCommand(ctx: Context, parsed: Parsed): Promise<void> {
  await status(ctx, statusConfig(parsed, ctx.env));
}
