/** `pgbackup rekey`: configuration from flags and environment, then the operation. */
import type { Parsed } from '../cli/args.js';
import { rekeyConfig } from '../config/config.js';
import { rekey } from '../ops/rekey.js';
import type { Context } from '../support/context.js';

export async function rekeyCommand(ctx: Context, parsed: Parsed): Promise<void> {
  await rekey(ctx, rekeyConfig(parsed, ctx.env));
}
