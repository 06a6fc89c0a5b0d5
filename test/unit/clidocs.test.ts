import { describe, it, expect } from 'vitest';
import { COMMANDS, COMMON } from '../../src/cli/args.js';
import { readFileSync } from 'node:fs';
import { DOCS, COMMON_DOCS, EXTRA_COMMANDS, commandHelp, mainHelp, bashCompletion, zshCompletion, manPage, helpOrCompletion, markdownOptions, DOCS_BEGIN, DOCS_END } from '../../src/clidocs.js';

type Opt = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };
const commands = Object.keys(COMMANDS);
const every = (cmd: string): [string, Opt][] => [...Object.entries(COMMANDS[cmd]!.spec as Record<string, Opt>), ...Object.entries(COMMON as Record<string, Opt>)];

describe('help, completion and man page follow the parser (no option undocumented)', () => {
  it('documents every option of every command, and nothing the parser does not know', () => {
    expect(Object.keys(DOCS).sort()).toEqual([...commands].sort());
    for (const cmd of commands) {
      expect(Object.keys(DOCS[cmd]!.options).sort(), cmd).toEqual(Object.keys(COMMANDS[cmd]!.spec).sort());
      for (const [name, o] of Object.entries(COMMANDS[cmd]!.spec as Record<string, Opt>)) {
        const d = DOCS[cmd]!.options[name]!;
        expect(d.help.length, `${cmd} --${name}`).toBeGreaterThan(5);
        // A value's placeholder exactly for options that take a value.
        expect(d.arg !== undefined, `${cmd} --${name} arg`).toBe(o.type === 'string');
      }
    }
    expect(Object.keys(COMMON_DOCS).sort()).toEqual(Object.keys(COMMON).sort());
  });

  it('--help of every command lists every option, its default and its environment variable', () => {
    for (const cmd of commands) {
      const text = commandHelp(cmd);
      for (const [name, o] of every(cmd)) {
        expect(text, `${cmd} --${name}`).toMatch(new RegExp(`^  (-${o.short ?? 'NONE'}, )?--${name}\\b`, 'm'));
        const d = DOCS[cmd]!.options[name] ?? COMMON_DOCS[name]!;
        const flat = text.replace(/\s+/g, ' ');
        if (d.default) expect(flat, `${cmd} --${name} default`).toContain(`default: ${d.default}`);
        if (d.env) expect(flat, `${cmd} --${name} env`).toContain(`env: ${d.env}`);
      }
    }
  });

  it('the environment variables the options read are named in their help', () => {
    const env = (cmd: string, name: string) => DOCS[cmd]!.options[name]!.env ?? '';
    expect(env('backup', 'to')).toContain('PGBACKUP_TARGET');
    expect(env('backup', 'database')).toContain('DATABASE_URL');
    expect(env('backup', 'recipient')).toContain('PGBACKUP_RECIPIENTS');
    expect(env('backup', 'part-size')).toBe('PGBACKUP_S3_PART_SIZE');
    for (const c of ['restore', 'verify', 'fetch']) {
      expect(env(c, 'identity')).toBe('PGBACKUP_IDENTITY_FILE');
      expect(env(c, 'passphrase-file')).toBe('PGBACKUP_PASSPHRASE_FILE');
      expect(env(c, 'from')).toBe('PGBACKUP_TARGET');
    }
  });

  it('--help of every command that reports progress names its interval option and variable', () => {
    for (const cmd of ['backup', 'restore', 'verify', 'fetch', 'rekey']) {
      const flat = commandHelp(cmd).replace(/\s+/g, ' ');
      expect(flat, cmd).toContain('--progress-interval DURATION');
      expect(flat, cmd).toContain('env: PGBACKUP_PROGRESS_INTERVAL');
    }
  });

  it('the main help names every command', () => {
    const text = mainHelp();
    for (const c of [...commands, ...Object.keys(EXTRA_COMMANDS)]) expect(text).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it('bash and zsh completion offer every command and every option', () => {
    const bash = bashCompletion();
    const zsh = zshCompletion();
    for (const cmd of commands) {
      expect(bash).toMatch(new RegExp(`^    ${cmd}\\)$`, 'm'));
      expect(zsh).toMatch(new RegExp(`^    ${cmd}\\)$`, 'm'));
      const bashCase = bash.slice(bash.indexOf(`    ${cmd})\n`)).split(';;')[0]!;
      const zshCase = zsh.slice(zsh.indexOf(`    ${cmd})\n`)).split(';;')[0]!;
      for (const [name, o] of every(cmd)) {
        expect(bashCase, `bash ${cmd} --${name}`).toMatch(new RegExp(`[" ]--${name}[" ]`));
        expect(zshCase, `zsh ${cmd} --${name}`).toContain(`--${name}`);
        if (o.short) expect(bashCase).toContain(` -${o.short}`);
      }
    }
    expect(bash).toContain('complete -F _pgbackup pgbackup');
    expect(zsh.startsWith('#compdef pgbackup\n')).toBe(true);
  });

  it('the man page has every command and every option', () => {
    const man = manPage('1.2.3');
    expect(man).toMatch(/^\.TH PGBACKUP 1 /);
    for (const cmd of commands) {
      const sec = man.slice(man.indexOf(`.SS ${cmd}\n`)).split('\n.SS ')[0]!;
      expect(sec.length, cmd).toBeGreaterThan(20);
      for (const name of Object.keys(COMMANDS[cmd]!.spec)) expect(sec, `man ${cmd} --${name}`).toContain(`\\-\\-${name.replace(/-/g, '\\-')}`);
    }
    for (const name of Object.keys(COMMON)) expect(man).toContain(`\\-\\-${name.replace(/-/g, '\\-')}`);
    for (const s of ['.SH ENVIRONMENT', '.SH EXIT STATUS', 'PGBACKUP_TARGET']) expect(man).toContain(s);
  });

  it('pgbackup help COMMAND and completion bash|zsh', () => {
    let out = '';
    let err = '';
    const o = (s: string) => (out += s);
    const e = (s: string) => (err += s);
    expect(helpOrCompletion(['help', 'backup'], o, e)).toBe(0);
    expect(out).toBe(commandHelp('backup') + '\n');
    out = '';
    expect(helpOrCompletion(['help'], o, e)).toBe(0);
    expect(out).toBe(mainHelp() + '\n');
    out = '';
    expect(helpOrCompletion(['completion', 'zsh'], o, e)).toBe(0);
    expect(out).toBe(zshCompletion());
    expect(helpOrCompletion(['help', 'nope'], o, e)).toBe(2);
    expect(helpOrCompletion(['completion', 'fish'], o, e)).toBe(2);
    expect(err).toContain('unknown command "nope"');
  });

  it('docs/cli.md holds the generated option reference as it is now (npm run docs rewrites it)', () => {
    const text = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    const block = text.slice(text.indexOf(DOCS_BEGIN) + DOCS_BEGIN.length, text.indexOf(DOCS_END)).trim();
    expect(block).toBe(markdownOptions().trim());
  });
});

describe('documented defaults are the code\'s constants', () => {
  // clidocs.ts sits in the cli layer and may not import the constants it documents, so this
  // test holds the words to the numbers: a changed default fails here until its help follows.
  it('every default the help prints is the named constant the code uses', async () => {
    const { DEFAULT_PART, DEFAULT_QUEUE, MAX_QUEUE } = await import('../../src/model/plan.js');
    const { DEFAULT_LEVEL } = await import('../../src/pipeline/compress.js');
    const { DEFAULT_STALL_MS } = await import('../../src/pipeline/dump.js');
    const { DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_PROGRESS_INTERVAL_MS, DEFAULT_RESTORE_JOBS } = await import('../../src/config/config.js');
    const { DEFAULT_TARGET } = await import('../../src/storage/target.js');
    const { durationLabel, sizeLabel } = await import('../../src/support/units.js');
    const b = DOCS.backup!.options;
    expect(b['compress-level']!.default).toBe(String(DEFAULT_LEVEL));
    expect(b['part-size']!.default).toBe(sizeLabel(DEFAULT_PART));
    expect(b['queue-size']!.default).toBe(String(DEFAULT_QUEUE));
    expect(b['queue-size']!.help).toContain(`(1-${MAX_QUEUE})`);
    expect(b['stall-timeout']!.default).toBe(durationLabel(DEFAULT_STALL_MS));
    expect(b.to!.default).toBe(DEFAULT_TARGET);
    const r = DOCS.restore!.options;
    expect(r['lock-timeout']!.default).toBe(durationLabel(DEFAULT_LOCK_TIMEOUT_MS));
    expect(r.jobs!.default!.startsWith(`${DEFAULT_RESTORE_JOBS} `)).toBe(true);
    for (const c of ['list', 'restore', 'verify', 'fetch']) expect(DOCS[c]!.options.from!.default, c).toBe(DEFAULT_TARGET);
    expect(COMMON_DOCS['progress-interval']!.default).toBe(durationLabel(DEFAULT_PROGRESS_INTERVAL_MS));
  });
});
