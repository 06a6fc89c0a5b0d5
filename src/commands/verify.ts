/** `pgbackup verify`: configuration from flags and environment, then the operation. */
import type { Parsed } from '../cli/args.js';
import { verifyConfig } from '../config/config.js';
import { verify } from '../ops/verify.js';
import type { Context } from '../support/context.js';

export async function verifyCommand(ctx: Context, parsed: Parsed): Promise<void> {
  await verify(ctx, verifyConfig(parsed, ctx.env));
}
