// stdout closed by its reader (`pgbackup verify --all ... | head -1`) is a normal end for every
// command that prints: exit 0 (or the command's own code), no stack trace on stderr.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn } from 'node:child_process';
import { BIN, baseEnv, run, url, tmp, createDb, newIdentity } from './helpers.js';

let folder: string;
let id: { file: string; recipient: string };
let key: string;

/** Run the CLI with `reader` on the other end of its stdout (bash; PIPESTATUS gives the CLI's exit code). */
function piped(args: string[], reader: string): Promise<{ code: number; stderr: string }> {
  const cmd = `${[process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')} | ${reader}; exit \${PIPESTATUS[0]}`;
  return new Promise((res) => {
    const c = spawn('bash', ['-c', cmd], { env: baseEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => res({ code: code ?? -1, stderr }));
  });
}

// A reader that closes its end at once, before the CLI has started writing.
const CLOSED = `{ exec 0<&-; sleep 2; }`;

beforeAll(async () => {
  folder = tmp();
  id = await newIdentity(tmp());
  await createDb('epipe_src', 'rich.sql');
  for (let i = 0; i < 3; i++) {
    const b = await run(['backup', '--database', url('epipe_src'), '--to', folder, '--recipient', id.recipient]);
    expect(b.code, b.stderr).toBe(0);
    key = b.stdout.trim();
    await new Promise((r) => setTimeout(r, 1000)); // three different seconds
  }
});

describe('stdout closed by its reader', () => {
  it.each([
    ['list', ['list', '--from', '<folder>'], CLOSED],
    ['list --json', ['list', '--from', '<folder>', '--json'], 'head -c 1 >/dev/null'],
    ['verify --all', ['verify', '--all', '--from', '<folder>', '--identity', '<id>'], 'head -1 >/dev/null'],
    ['verify --all --json', ['verify', '--all', '--from', '<folder>', '--identity', '<id>', '--json'], CLOSED],
    ['fetch', ['fetch', '<key>', '--from', '<folder>', '--identity', '<id>'], 'head -c 100 >/dev/null'],
    ['--help', ['backup', '--help'], CLOSED],
    ['bucket lifecycle', ['bucket', 'lifecycle', '--to', 's3://backups/epipe/'], CLOSED],
  ])('%s: exit 0, no stack trace', async (_name, args, reader) => {
    const a = args.map((x) => x.replace('<folder>', folder).replace('<id>', id.file).replace('<key>', key));
    const r = await piped(a, reader);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/EPIPE|\n\s+at |Error:/);
  });
});
