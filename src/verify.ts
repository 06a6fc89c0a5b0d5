import type { Parsed } from './cli.js';
import type { Context } from './context.js';
import { InternalError } from './errors.js';
export async function verifyCommand(_ctx: Context, _p: Parsed): Promise<number> {
  throw new InternalError('NOT_BUILT', 'verify is not built yet');
}
