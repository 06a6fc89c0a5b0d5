// The process supervisor and the stages built on it, with small real child processes (sh):
// the facts they report (exit code, signal, stall, cancel, stderr tail, secrets scrubbed),
// the errors that carry them, and the psql sink's promise that a half stream never commits.
import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Supervised, dumpFailure, psqlFailure } from '../../../src/pipeline/process.js';
import { startDump } from '../../../src/pipeline/dump.js';
import { PsqlSink } from '../../../src/pipeline/psql.js';
import { DumpError, RestoreError, VerifyError } from '../../../src/support/errors.js';
import { tempDir } from '../../support/tmp.js';

const env = { PATH: process.env.PATH };
const sh = (script: string, o: Partial<ConstructorParameters<typeof Supervised>[0]> = {}) =>
  new Supervised({ bin: '/bin/sh', args: ['-c', script], env, secrets: [], name: 'pg_dump', ...o });

describe('Supervised: the facts of a run', () => {
  it('a clean exit: code 0, its stderr kept, nothing else', async () => {
    const f = await sh('echo "a warning" >&2; exit 0').facts();
    expect(f).toEqual({ command: 'pg_dump', exitCode: 0, signal: null, stalled: false, cancelled: false, stderrTail: 'a warning', spawnError: undefined });
  });

  it('a failed exit: its code and the last lines of stderr, secrets scrubbed', async () => {
    const p = sh('for i in 1 2 3 4 5; do echo "line $i" >&2; done; echo "password hunter22 and postgres://u:pw@h/db" >&2; exit 3', { secrets: ['hunter22'], tailLines: 3 });
    const f = await p.facts();
    expect(f.exitCode).toBe(3);
    expect(f.signal).toBeNull();
    expect(f.stderrTail).toBe('line 4\nline 5\npassword [redacted] and postgres://u:[redacted]@h/db');
    const e = dumpFailure(p, f);
    expect(e).toBeInstanceOf(DumpError);
    expect(e.code).toBe('DUMP_FAILED');
    expect(e.message).toBe(`pg_dump exited with code 3:\n${f.stderrTail}`);
    expect(e.process).toEqual(f);
  });

  it('killed by a signal: the signal, no exit code', async () => {
    const f = await sh('kill -TERM $$; sleep 5').facts();
    expect(f).toMatchObject({ exitCode: null, signal: 'SIGTERM', stalled: false, cancelled: false });
    expect(Supervised.describe(f)).toBe('pg_dump was killed by SIGTERM');
  });

  it('the stall guard kills a child that makes no progress, and says so', async () => {
    const p = sh('exec sleep 30', { stallMs: 100 });
    const f = await p.facts();
    expect(f).toMatchObject({ signal: 'SIGKILL', stalled: true, cancelled: false });
    const e = dumpFailure(p, f);
    expect(e.code).toBe('STALLED');
    expect(e.message).toBe('pg_dump wrote nothing for 0s and was killed (stall guard)');
  });

  it('an abort cancels the child (SIGTERM), even one aborted before the start', async () => {
    const ac = new AbortController();
    const p = sh('exec sleep 30', { signal: ac.signal });
    ac.abort();
    expect(await p.facts()).toMatchObject({ signal: 'SIGTERM', cancelled: true, stalled: false });
    const early = sh('exec sleep 30', { signal: AbortSignal.abort() });
    expect(await early.facts()).toMatchObject({ signal: 'SIGTERM', cancelled: true });
  });

  it('a program that cannot be started: the reason, as a SPAWN error of the stage', async () => {
    const p = new Supervised({ bin: '/nonexistent/psql', args: [], env, secrets: [] });
    const f = await p.facts();
    expect(f.exitCode).toBeNull();
    expect(f.spawnError).toMatch(/ENOENT/);
    const e = psqlFailure(p, f);
    expect(e).toBeInstanceOf(RestoreError);
    expect(e.code).toBe('SPAWN');
    expect(e.message).toMatch(/^cannot run \/nonexistent\/psql: .*ENOENT/);
    expect(e.process?.command).toBe('psql');
  });
});

describe('startDump', () => {
  async function drain(s: Readable): Promise<string> {
    const parts: Buffer[] = [];
    for await (const c of s) parts.push(c as Buffer);
    return Buffer.concat(parts).toString();
  }

  it('its stream ends only after an exit 0', async () => {
    const d = startDump({ bin: '/bin/sh', args: ['-c', 'printf "SELECT 1;\\n"; echo note >&2'], env, signal: new AbortController().signal, secrets: [] });
    expect(await drain(d.stream)).toBe('SELECT 1;\n');
    expect((await d.exited).code).toBe(0);
  });

  it('output followed by a failed exit fails the stream with the facts, never ends it', async () => {
    const d = startDump({ bin: '/bin/sh', args: ['-c', 'printf "SELECT 1;\\n"; echo "pg_dump: error: query failed" >&2; exit 1'], env, signal: new AbortController().signal, secrets: [] });
    const e = await drain(d.stream).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(DumpError);
    expect((e as DumpError).message).toBe('sh exited with code 1:\npg_dump: error: query failed');
    expect((e as DumpError).process).toMatchObject({ command: 'sh', exitCode: 1, stalled: false, cancelled: false });
  });

  it('a stalled pg_dump fails the stream as STALLED', async () => {
    const d = startDump({ bin: '/bin/sh', args: ['-c', 'printf x; exec sleep 30'], env, signal: new AbortController().signal, secrets: [], stallMs: 100 });
    const e = await drain(d.stream).then(() => null, (x: unknown) => x);
    expect((e as DumpError).code).toBe('STALLED');
    expect((e as DumpError).process).toMatchObject({ stalled: true, signal: 'SIGKILL' });
  });
});

describe('PsqlSink: a half stream never commits', () => {
  // A stand-in for psql: it copies its input and "commits" (writes OUT.done) only at a clean end
  // of input, as psql -1 does with ON_ERROR_STOP.
  function fakePsql(): { bin: string; out: string } {
    const dir = tempDir('pgbackup-psql-');
    const bin = join(dir, 'psql');
    writeFileSync(bin, '#!/bin/sh\ncat > "$OUT" && echo committed > "$OUT.done"\n');
    chmodSync(bin, 0o755);
    return { bin, out: join(dir, 'input.sql') };
  }

  /** Two statements; `failAfter`: fail instead of the second, once psql has read the first. */
  function upstream(failAfter?: string): Readable {
    return Readable.from(
      (async function* () {
        yield Buffer.from('CREATE TABLE t (a int);\n');
        if (failAfter !== undefined) {
          // Let psql read the first part before the failure, as in a real restore: wait until
          // the stand-in has copied it out (a fixed pause was too short on a loaded machine).
          while (!(existsSync(failAfter) && readFileSync(failAfter, 'utf8') === 'CREATE TABLE t (a int);\n')) await new Promise((r) => setTimeout(r, 5));
          throw new Error('damaged upstream');
        }
        yield Buffer.from('INSERT INTO t VALUES (1);\n');
      })(),
    );
  }

  it('commits a whole stream', async () => {
    const { bin, out } = fakePsql();
    const sink = new PsqlSink({ bin, env: { ...env, OUT: out }, secrets: [] });
    await pipeline(upstream(), sink);
    expect(readFileSync(out, 'utf8')).toBe('CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n');
    expect(existsSync(`${out}.done`)).toBe(true);
  });

  it('an upstream error kills psql before it sees the end of its input', async () => {
    const { bin, out } = fakePsql();
    const sink = new PsqlSink({ bin, env: { ...env, OUT: out }, secrets: [] });
    await expect(pipeline(upstream(out), sink)).rejects.toThrow('damaged upstream');
    expect((await sink.exited).signal).toBe('SIGKILL');
    expect(readFileSync(out, 'utf8')).toBe('CREATE TABLE t (a int);\n');
    expect(existsSync(`${out}.done`)).toBe(false);
  });

  it('a failing last check withholds the end of input', async () => {
    const { bin, out } = fakePsql();
    const sink = new PsqlSink({ bin, env: { ...env, OUT: out }, secrets: [], check: () => { throw new VerifyError('CHECKSUM', 'sha256 differs'); } });
    await expect(pipeline(upstream(), sink)).rejects.toThrow('sha256 differs');
    expect((await sink.exited).signal).toBe('SIGKILL');
    expect(existsSync(`${out}.done`)).toBe(false);
  });

  it('a postamble made while the stream loads (a promise) is sent last, then the end of input', async () => {
    const { bin, out } = fakePsql();
    let made = false;
    const later = new Promise<string>((r) => setTimeout(() => ((made = true), r('COMMENT ON TABLE t IS $$x$$;\n')), 50));
    const sink = new PsqlSink({ bin, env: { ...env, OUT: out }, secrets: [], beforeEnd: () => later, check: () => expect(made).toBe(true) });
    await pipeline(upstream(), sink);
    expect(readFileSync(out, 'utf8')).toBe('CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\nCOMMENT ON TABLE t IS $$x$$;\n');
    expect(existsSync(`${out}.done`)).toBe(true);
  });

  it('a postamble that cannot be made withholds the end of input', async () => {
    const { bin, out } = fakePsql();
    const whole = 'CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n';
    // It fails once psql has read the whole dump (waiting for the stand-in to copy it out).
    const failing = async (): Promise<string> => {
      while (!(existsSync(out) && readFileSync(out, 'utf8') === whole)) await new Promise((r) => setTimeout(r, 5));
      throw new RestoreError('CONNECT', 'cannot read the target');
    };
    const sink = new PsqlSink({ bin, env: { ...env, OUT: out }, secrets: [], beforeEnd: failing });
    await expect(pipeline(upstream(), sink)).rejects.toThrow('cannot read the target');
    expect((await sink.exited).signal).toBe('SIGKILL');
    expect(readFileSync(out, 'utf8')).toBe(whole);
    expect(existsSync(`${out}.done`)).toBe(false);
  });

  it('psql failing fails the sink with its facts, the transaction reported rolled back', async () => {
    const { bin } = fakePsql();
    writeFileSync(bin, '#!/bin/sh\necho "ERROR:  relation \\"t\\" already exists" >&2\nexit 3\n');
    const sink = new PsqlSink({ bin, env, secrets: [] });
    const e = await pipeline(upstream(), sink).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(RestoreError);
    expect((e as RestoreError).message).toBe('psql exited with code 3; the transaction was rolled back:\nERROR:  relation "t" already exists');
    expect((e as RestoreError).process).toMatchObject({ command: 'psql', exitCode: 3 });
  });
});
