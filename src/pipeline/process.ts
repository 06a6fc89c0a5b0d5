/** Child-process helpers shared by the process stages: exit tracking and stderr tails. */
import type { ChildProcess } from 'node:child_process';
import { scrub } from '../support/secret.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves when the child has exited (never rejects; a spawn error becomes code -1). */
export function exitOf(child: ChildProcess, onError?: (e: Error) => void): Promise<Exit> {
  return new Promise((resolve) => {
    let done = false;
    child.once('error', (e) => {
      onError?.(e);
      if (!done) {
        done = true;
        resolve({ code: -1, signal: null });
      }
    });
    // 'exit', not 'close': a grandchild holding the pipes open must not keep us waiting.
    child.once('exit', (code, signal) => {
      if (!done) {
        done = true;
        resolve({ code, signal });
      }
    });
  });
}

/** Keeps the last `max` lines a child wrote to stderr, secrets scrubbed. */
export class StderrTail {
  private lines: string[] = [];
  private partial = '';
  constructor(private readonly child: ChildProcess, private readonly secrets: Array<string | undefined>, private readonly max = 20, onLine?: (l: string) => void) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      const parts = (this.partial + s).split('\n');
      this.partial = parts.pop() ?? '';
      for (const l of parts) {
        if (l.trim() === '') continue;
        this.lines.push(l);
        onLine?.(scrub(l, this.secrets));
        if (this.lines.length > this.max) this.lines.shift();
      }
    });
  }
  /** Wait (briefly) until the child's stderr is fully read. */
  async settled(ms = 500): Promise<void> {
    const s = this.child.stderr;
    if (!s || s.readableEnded || s.destroyed) return;
    await new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      s.once('close', () => {
        clearTimeout(t);
        r();
      });
    });
  }
  text(): string {
    const all = this.partial.trim() ? [...this.lines, this.partial] : this.lines;
    return scrub(all.join('\n'), this.secrets);
  }
}

export function describeExit(name: string, e: Exit): string {
  if (e.signal) return `${name} was killed by ${e.signal}`;
  if (e.code === -1) return `${name} could not be started`;
  return `${name} exited with code ${e.code}`;
}
