// What an operator at a terminal sees: progress while a backup runs, and a question before
// --clean replaces a database. `script` gives the CLI a pseudo-terminal.
import { describe, it, expect, beforeAll } from 'vitest';
import { join } from 'node:path';
import { baseEnv, onTty, createDb, dropDb, fakeBinDir, needCommand, newIdentity, readText, run, snapshot, sql, tmp, url } from './helpers.js';

/** The erase-line sequence the progress line starts with (a carriage return, ESC [2K). */
const ERASE = '\r' + String.fromCharCode(27) + '[2K';
const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('on a terminal', () => {
  beforeAll(() => needCommand('script', 'bsdutils'));
  let id: { file: string; recipient: string };
  // A backup of several MiB stored: more than the read stages buffer, so a reader that waits
  // holds the read (a small one would be read whole at once, and its step over before a redraw).
  const big = { out: '', key: '' };
  beforeAll(async () => {
    id = await newIdentity(tmp());
    await createDb('tty_src', 'rich.sql');
    await createDb('tty_big');
    await sql('tty_big', `CREATE TABLE t AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS v FROM generate_series(1, 200000) g`);
    big.out = tmp();
    const b = await run(['backup', '--database', url('tty_big'), '--to', big.out, '--recipient', id.recipient, '--quiet']);
    expect(b.code, b.stderr).toBe(0);
    big.key = b.stdout.trim();
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
    const { out, key } = big;
    await dropDb('tty_prog');
    // psql that waits before reading: the restore is held long enough for the line to be drawn.
    const bin = fakeBinDir({ psql: `sleep 3; exec "$REAL/psql" "$@"` });
    const r = await onTty(['restore', key, '--from', out, '--to', url('tty_prog'), '--create', '--identity', id.file], '', baseEnv({ PGBACKUP_PG_BINDIR: bin }));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(new RegExp(esc(ERASE) + String.raw`restore +\d+% {2}[\d.]+ [KMG]?i?B of [\d.]+ [KMG]?i?B {2}[\d.]+ [KMG]?i?B/s {2}ETA`));
    expect(await snapshot('tty_prog')).toEqual(await snapshot('tty_big'));
  });

  it('fetch shows its line while the reader holds the stream; --quiet and --log-level warn draw none', async () => {
    const { out, key } = big;
    const file = join(tmp(), 'fetched.sql');
    // stdout piped into a reader that waits: stderr is still the terminal, so the line is drawn.
    const r = await onTty(['fetch', key, '--from', out, '--identity', id.file, '-o', '-'], '', baseEnv(), { pipe: `(sleep 3; cat > '${file}')` });
    expect(r.out).toMatch(new RegExp(esc(ERASE) + String.raw`fetch +\d+% {2}[\d.]+ [KMG]?i?B of [\d.]+ [KMG]?i?B {2}[\d.]+ [KMG]?i?B/s {2}ETA`));
    // The line is erased when the step ends: the summary starts on a clean line.
    expect(r.out).toMatch(new RegExp(esc(ERASE) + String.raw`[^\r\n]*fetched`));
    expect(readText(file)).toContain('PostgreSQL database dump complete');
    for (const quiet of [['--quiet'], ['--log-level', 'warn']]) {
      const q = await onTty(['fetch', key, '--from', out, '--identity', id.file, '-o', '-', ...quiet], '', baseEnv(), { pipe: '(sleep 2; cat > /dev/null)' });
      expect(q.out, quiet.join(' ')).not.toContain(ERASE);
      expect(q.out, quiet.join(' ')).not.toMatch(/fetch +\d+%/);
    }
  });

  it('Ctrl-C during a backup or a restore: the progress line is erased before the error, and not drawn again', async () => {
    const bin = fakeBinDir({ pg_dump: `"$REAL/pg_dump" "$@" | (head -c 5000; sleep 30; cat)`, psql: `sleep 30; exec "$REAL/psql" "$@"` });
    await dropDb('tty_int');
    const runs: Array<[string, string[]]> = [
      ['backup', ['backup', '--database', url('tty_src'), '--to', tmp(), '--recipient', id.recipient]],
      // The restore's step is not over when it is interrupted (its stream is held, not ended).
      ['restore', ['restore', big.key, '--from', big.out, '--to', url('tty_int'), '--create', '--identity', id.file]],
    ];
    for (const [step, args] of runs) {
      // ETX typed on the terminal: the terminal sends SIGINT, as a person's Ctrl-C does.
      const r = await onTty(args, '\x03', baseEnv({ PGBACKUP_PG_BINDIR: bin }), { when: new RegExp(`${step} +\\d+%.*ETA`) });
      expect(r.code, r.out).toBe(130);
      const last = r.out.lastIndexOf(ERASE + step);
      expect(last, step).toBeGreaterThanOrEqual(0);
      const tail = r.out.slice(last + ERASE.length);
      // The line (and the terminal's ^C echo) is erased before anything else is written...
      expect(tail, step).toMatch(new RegExp(`^${step} [^\\r\\n\\x1b]*(\\^C)?` + esc(ERASE)));
      // ...and the error starts at the beginning of a line, with no progress after it.
      expect(tail, step).toMatch(/interrupted by SIGINT/);
      expect(tail.slice(tail.indexOf('interrupted')), step).not.toMatch(new RegExp(`${step} +\\d+%`));
    }
    expect(await sql('postgres', `SELECT 1 FROM pg_database WHERE datname = 'tty_int'`)).toEqual([]);
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
