// Selective restore (--table, --schema, --exclude-table), --list's text form, and the report of
// staging databases left by killed parallel restores.
import { describe, it, expect, beforeAll } from 'vitest';
import { url, tmp, run, createDb, dropDb, sql, newIdentity } from './helpers.js';

let id: { file: string; recipient: string };

beforeAll(async () => {
  id = await newIdentity(tmp());
}, 60_000);

async function backupOf(db: string): Promise<{ key: string; folder: string }> {
  const folder = tmp();
  const b = await run(['backup', '--database', url(db), '--to', folder, '--recipient', id.recipient]);
  expect(b.code, b.stderr).toBe(0);
  return { key: b.stdout.trim(), folder };
}

async function databases(): Promise<string[]> {
  return (await sql<{ d: string }>('postgres', `SELECT datname AS d FROM pg_database ORDER BY 1`)).map((r) => r.d);
}

describe('restore --list, text form', () => {
  it('one tab-separated line per entry: names with spaces, dots, quotes and tabs stay one field each', async () => {
    await createDb('sel_list');
    await sql('sel_list', `CREATE SCHEMA "my schema"; CREATE TABLE "my schema"."a b.""c""" (x int); INSERT INTO "my schema"."a b.""c""" VALUES (1), (2);
      CREATE TABLE "tab\there" (y int)`);
    const { key, folder } = await backupOf('sel_list');
    const r = await run(['restore', key, '--from', folder, '--list', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => l.split('\t'));
    for (const l of lines) expect(l, l.join('|')).toHaveLength(5);
    expect(lines).toContainEqual(['TABLE DATA', 'my schema', 'a b."c"', 'postgres', '2']);
    expect(lines).toContainEqual(['TABLE', 'my schema', 'a b."c"', 'postgres', '']);
    expect(lines).toContainEqual(['TABLE', 'public', 'tab\\there', 'postgres', '']);
    expect(lines).toContainEqual(['SCHEMA', '', 'my schema', 'postgres', '']);
  });
});

describe('staging databases left by a killed parallel restore', () => {
  it('are named in a warning with how to drop them, and never dropped by the restore', async () => {
    await createDb('sel_stage_src');
    await sql('sel_stage_src', `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 200000) g`);
    const { key, folder } = await backupOf('sel_stage_src');
    await createDb('sel_stage_tgt');
    await sql('sel_stage_tgt', `CREATE TABLE keep (v text)`);
    const before = new Set((await databases()).filter((d) => d.startsWith('pgbackup_staging_')));
    let pid = 0;
    const killed = await run(['restore', key, '--from', folder, '--to', url('sel_stage_tgt'), '--clean', '--yes', '--jobs', '2', '--identity', id.file], {
      onSpawn: (x) => (pid = x),
      onStderr: (s) => {
        if (/loading into a staging database/.test(s) && pid) process.kill(pid, 'SIGKILL');
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    const left = (await databases()).filter((d) => d.startsWith('pgbackup_staging_') && !before.has(d));
    expect(left).toHaveLength(1);
    // Its psql sessions end once their input closes.
    for (let i = 0; i < 100 && (await sql('postgres', `SELECT 1 FROM pg_stat_activity WHERE datname = $1`, [left[0]])).length; i++) await new Promise((r) => setTimeout(r, 100));
    const r = await run(['restore', key, '--from', folder, '--to', url('sel_stage_tgt'), '--clean', '--yes', '--jobs', '2', '--identity', id.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(left[0]);
    expect(r.stderr).toContain('DROP DATABASE');
    expect(await databases()).toContain(left[0]);
    await dropDb(left[0]!);
    await dropDb(/kept as "([^"]+)"/.exec(r.stderr)![1]!);
  });
});
