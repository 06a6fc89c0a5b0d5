/** Notifications for unattended runs. A failing notification is a warning, never a failure. */
import type { Context } from './context.js';
import { messageOf } from './errors.js';
import { SECOND } from './units.js';

export interface Summary {
  status: 'start' | 'success' | 'fail';
  database?: string;
  error?: string;
  durationMs?: number;
  backups?: Array<{ key: string; database: string; sqlBytes: number; storedBytes: number; tier: string }>;
}

/** A notification endpoint gets this long to answer; a slow one must not hold up the backup. */
const NOTIFY_TIMEOUT_MS = 10 * SECOND;

async function send(ctx: Context, url: string, init: RequestInit): Promise<void> {
  try {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS) });
    if (!r.ok) ctx.log.warn({ url: new URL(url).origin, status: r.status }, 'notification answered with an error');
  } catch (e) {
    ctx.log.warn({ url: safeOrigin(url), err: messageOf(e) }, 'notification failed');
  }
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(bad URL)';
  }
}

export async function notify(ctx: Context, healthcheckUrl: string | undefined, webhookUrl: string | undefined, s: Summary): Promise<void> {
  const jobs: Promise<void>[] = [];
  if (healthcheckUrl) {
    const base = healthcheckUrl.replace(/\/+$/, '');
    const url = s.status === 'start' ? `${base}/start` : s.status === 'fail' ? `${base}/fail` : base;
    jobs.push(send(ctx, url, { method: s.status === 'start' ? 'GET' : 'POST', body: s.status === 'start' ? undefined : (s.error ?? 'ok') }));
  }
  if (webhookUrl && s.status !== 'start') {
    jobs.push(
      send(ctx, webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tool: 'pgbackup', ...s }),
      }),
    );
  }
  await Promise.all(jobs);
}
