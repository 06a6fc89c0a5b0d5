// What an operator at a terminal sees: progress while a backup runs, and a question before
// --clean replaces a database. `script` gives the CLI a pseudo-terminal.
import { describe, it, expect, beforeAll } from 'vitest';
import { baseEnv, onTty, createDb, dropDb, fakeBinDir, needCommand, newIdentity, run, snapshot, sql, tmp, url } from './helpers.js';

/** The erase-line sequence the progress line starts with (a carriage return, ESC [2K). */
const ERASE = '\r' + String.fromCharCode(27) + '[2K';
const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('on a terminal', () => {
  beforeAll(() => needCommand('script', 'bsdutils'));
  let id: { file: string; recipient: string };
  beforeAll(async () => {
    id = await newIdentity(tmp());
    await createDb('tty_src', 'rich.sql');
  });

  it('backup shows progress every few seconds and a summary', async () => {
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | (head -c 5000; sleep 4; cat)` });
    const r = await onTty(['backup', '--database', url('tty_src'), '--to', tmp(), '--recipient', id.recipient], '', baseEnv({ PGBACKUP_PG_BINDIR: bin }));
    expect(r.code, r.out).toBe(0);
    // One line rewritten in place: percentage of the estimate, bytes, rate, ETA.
    expect(r.out).toMatch(new RegExp(esc(ERASE) + String.raw`backup +\d+% {2}[\d.]+ [KMG]?i?B of [\d.]+ [KMG]?i?B {2}stored [\d.]+ [KMG]?i?B {2}[\d.]+ [KMG]?i?B/s {2}ETA [\d:?]+`));
    expect(r.out).toMatch(/backup complete[\s\S]*throughput/);
  });

  it('restore shows a progress line too (stored bytes read of the object\'s size)', async () => {
    const out = tmp();
    const b = await onTty(['backup', '--database', url('tty_src'), '--to', out, '--recipient', id.recipient, '--log-level', 'warn'], '', baseEnv());
    const key = b.out.trim().split(/\r?\n/).pop()!.trim();
    await dropDb('tty_prog');
    // psql that waits before reading: the restore is held long enough for the line to be drawn.
    const bin = fakeBinDir({ psql: `sleep 3; exec "$REAL/psql" "$@"` });
    const r = await onTty(['restore', key, '--from', out, '--to', url('tty_prog'), '--create', '--identity', id.file], '', baseEnv({ PGBACKUP_PG_BINDIR: bin }));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(new RegExp(esc(ERASE) + String.raw`restore +\d+% {2}[\d.]+ [KMG]?i?B of [\d.]+ [KMG]?i?B {2}[\d.]+ [KMG]?i?B/s {2}ETA`));
    expect(await snapshot('tty_prog')).toEqual(await snapshot('tty_src'));
  });

  it('restore --clean asks first; "n" leaves the target alone, "y" replaces it', async () => {
    const out = tmp();
    const b = await onTty(['backup', '--database', url('tty_src'), '--to', out, '--recipient', id.recipient, '--log-level', 'warn'], '', baseEnv());
    const key = b.out.trim().split(/\r?\n/).pop()!.trim();
    await createDb('tty_dst');
    await sql('tty_dst', `CREATE TABLE mine (v text); INSERT INTO mine VALUES ('x')`);
    const before = await snapshot('tty_dst');
    const no = await onTty(['restore', key, '--from', out, '--to', url('tty_dst'), '--clean', '--identity', id.file], 'n\n', baseEnv());
    expect(no.out).toMatch(/Replace the contents of database "tty_dst"/);
    expect(no.code).toBe(2);
    expect(await snapshot('tty_dst')).toEqual(before);
    const yes = await onTty(['restore', key, '--from', out, '--to', url('tty_dst'), '--clean', '--identity', id.file], 'y\n', baseEnv());
    expect(yes.code, yes.out).toBe(0);
    expect(await snapshot('tty_dst')).toEqual(await snapshot('tty_src'));
  });
});

describe('progress in JSON logs (no terminal)', () => {
  it('a progress event at the configured interval, with percent, rate and ETA; none on a non-terminal without JSON logs', async () => {
    const id2 = await newIdentity(tmp());
    await createDb('json_prog', 'rich.sql');
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | (head -c 5000; sleep 2; cat)` });
    const r = await run(['backup', '--database', url('json_prog'), '--to', tmp(), '--recipient', id2.recipient], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin, PGBACKUP_PROGRESS_INTERVAL: '200ms' }) });
    expect(r.code, r.stderr).toBe(0);
    const events = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((e) => e.event === 'progress');
    expect(events.length).toBeGreaterThanOrEqual(2);
    for (const e of events) {
      expect(e.step).toBe('backup');
      expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
      expect(e.totalBytes).toBeGreaterThanOrEqual(e.doneBytes);
      expect(typeof e.percent).toBe('number');
      expect(typeof e.bytesPerSecond).toBe('number');
      expect(e).toHaveProperty('storedBytes');
    }
    // While pg_dump is held after its first 5000 bytes, the events show them.
    expect(events.some((e) => e.doneBytes >= 5000 && e.percent > 0 && e.etaSeconds !== undefined)).toBe(true);
    const pretty = await run(['backup', '--database', url('json_prog'), '--to', tmp(), '--recipient', id2.recipient, '--log-format', 'pretty'], { env: baseEnv({ PGBACKUP_PG_BINDIR: bin, PGBACKUP_PROGRESS_INTERVAL: '200ms' }) });
    expect(pretty.code, pretty.stderr).toBe(0);
    expect(pretty.stderr).not.toContain('progress');
    expect(pretty.stderr).not.toContain(ERASE);
    const bad = await run(['list', '--from', tmp()], { env: baseEnv({ PGBACKUP_PROGRESS_INTERVAL: 'often' }) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/PGBACKUP_PROGRESS_INTERVAL/);
  });
});
