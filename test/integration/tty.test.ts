// What an operator at a terminal sees: progress while a backup runs, and a question before
// --clean replaces a database. `script` gives the CLI a pseudo-terminal.
import { describe, it, expect, beforeAll } from 'vitest';
import { baseEnv, onTty, createDb, fakeBinDir, needCommand, newIdentity, snapshot, sql, tmp, url } from './helpers.js';

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
    expect(r.out).toMatch(/progress[\s\S]*dumped[\s\S]*stored[\s\S]*rate/);
    expect(r.out).toMatch(/backup complete[\s\S]*throughput/);
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
