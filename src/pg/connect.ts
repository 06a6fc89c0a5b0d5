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

/** node-postgres's error when the server answers a TLS request with "no" (it has ssl = off). */
const NO_TLS = 'The server does not support SSL connections';

/**
 * Servers (host:port) that answered this process's TLS request with "no". libpq, under
 * sslmode=prefer, goes on without TLS on the same connection; node-postgres cannot, so each
 * connection would cost a second one. The answer is remembered for the run instead: later
 * connections to that server under sslmode=prefer go straight to the attempt without TLS, as
 * libpq would end up anyway.
 */
const refusedTls = new Set<string>();
const serverOf = (config: Record<string, unknown>) => `${String(config.host)}:${String(config.port)}`;

/** A connected client, or the error of the last attempt (naming each attempt when there were two). */
export async function connectPg(ci: ConnInfo, signal: AbortSignal): Promise<pg.Client> {
  let attempts = pgAttempts(ci);
  // sslmode=prefer: TLS, then without. A server that said "no TLS" before is not asked again.
  const prefer = attempts.length === 2 && attempts[0]!.config.ssl && !attempts[1]!.config.ssl;
  if (prefer && refusedTls.has(serverOf(attempts[0]!.config))) attempts = [attempts[1]!];
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
      // Not awaited: a failed attempt has no session to wait for (its socket closes on its own).
      void client.end().catch(() => undefined);
      if (signal.aborted) throw signal.reason;
      if (prefer && a.config.ssl && messageOf(e) === NO_TLS) refusedTls.add(serverOf(a.config));
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
