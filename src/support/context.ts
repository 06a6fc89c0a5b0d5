import { readFileSync } from 'node:fs';
import type { Logger } from './log.js';
import type { ProgressFn } from './progress.js';

/** What every command gets from main.ts. */
export interface Context {
  log: Logger;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  /** Where results go (keys, tables, JSON): stdout. */
  out: (text: string) => void;
  isTTY: boolean;
  /** Progress of a long step: a line on a terminal, an event at an interval in JSON logs; absent otherwise. */
  progress?: ProgressFn | undefined;
}

let cached: string | undefined;
export function toolVersion(): string {
  if (cached) return cached;
  try {
    // dist/support/context.js -> the package root (the layout move left this one level short,
    // and the fallback below hid it: the package test caught "0.0.0").
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    cached = pkg.version;
  } catch {
    cached = '0.0.0';
  }
  return cached;
}
