import type { Parsed } from './cli.js';
import type { Context } from './context.js';
import { InternalError } from './errors.js';
export async function bucketCommand(_ctx: Context, _p: Parsed): Promise<number> {
  throw new InternalError('NOT_BUILT', 'bucket is not built yet');
}
