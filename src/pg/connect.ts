/**
 * Opening a node-postgres connection the way libpq would open it for the same settings:
 * sslmode's fallbacks (prefer: TLS then plain; allow: plain then TLS), then what libpq checks
 * before it hands a connection over (channel_binding=require, target_session_attrs).
 */
import pg from 'pg';
import { type ConnInfo, pgAttempts, sessionChecks } from './conn.js';
import { messageOf } from '../support/errors.js';

async function checkSession(client: pg.Client, ci: ConnInfo, usedTls: boolean, mechanisms: string[] | null): Promise<void> {
  const checks = sessionChecks(ci);
  if (checks.channelBinding === 'require' && !(usedTls && mechanisms?.includes('SCRAM-SHA-256-PLUS'))) {
    throw new Error('channel binding required, but the server authenticated the client without channel binding (channel_binding=require)');
  }
  const t = checks.targetSessionAttrs;
  if (t === 'any' || t === 'prefer-standby') return;
  const r = await client.query(`SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS ro`);
  const standby = Boolean(r.rows[0].standby);
  const ro = r.rows[0].ro === 'on';
  if (t === 'read-write' && ro) throw new Error('session is read-only (target_session_attrs=read-write)');
  if (t === 'read-only' && !ro) throw new Error('session is not read-only (target_session_attrs=read-only)');
  if (t === 'primary' && standby) throw new Error('server is in hot standby mode (target_session_attrs=primary)');
  if (t === 'standby' && !standby) throw new Error('server is not in hot standby mode (target_session_attrs=standby)');
}

/** A connected client, or the error of the last attempt (naming each attempt when there were two). */
export async function connectPg(ci: ConnInfo, signal: AbortSignal): Promise<pg.Client> {
  const attempts = pgAttempts(ci);
  const errors: string[] = [];
  let last: unknown;
  for (const a of attempts) {
    signal.throwIfAborted();
    const client = new pg.Client(a.config);
    client.on('error', () => undefined);
    let mechanisms: string[] | null = null;
    const conn = (client as unknown as { connection?: NodeJS.EventEmitter }).connection;
    conn?.on('authenticationSASL', (m: { mechanisms?: string[] }) => {
      mechanisms = m.mechanisms ?? [];
    });
    const onAbort = () => void client.end().catch(() => undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      await client.connect();
      await checkSession(client, ci, Boolean(a.config.ssl), mechanisms);
      return client;
    } catch (e) {
      await client.end().catch(() => undefined);
      if (signal.aborted) throw signal.reason;
      last = e;
      errors.push(`${a.label}: ${messageOf(e)}`);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
  if (errors.length > 1) {
    const e = new Error(errors.join('; '));
    (e as { code?: unknown }).code = (last as { code?: unknown })?.code;
    throw Object.assign(e, { cause: last });
  }
  throw last;
}
