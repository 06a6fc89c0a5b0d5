import { readFileSync } from 'node:fs';
import type { Logger } from './log.js';

/** What every command gets from main.ts. */
export interface Context {
  log: Logger;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  /** Where results go (keys, tables, JSON): stdout. */
  out: (text: string) => void;
  isTTY: boolean;
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

export function humanBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${u[i]}`;
}

export function humanDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}
