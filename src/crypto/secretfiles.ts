/** Reading the files that hold keys and passphrases. Messages name the file, never its contents. */
import { readFile } from 'node:fs/promises';
import { UsageError, messageOf } from '../support/errors.js';
import { Secret } from '../support/secret.js';
import { parseIdentityFile } from './age.js';

async function read(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${what} ${path}: cannot read it (${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : messageOf(e)})`);
  }
}

export async function readRecipientsFile(path: string): Promise<string[]> {
  const text = await read(path, 'recipients file');
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export async function readPassphrase(path: string): Promise<Secret> {
  const text = await read(path, 'passphrase file');
  const first = text.split(/\r?\n/)[0] ?? '';
  if (first === '') throw new UsageError(`passphrase file ${path}: its first line is empty`);
  return new Secret(first);
}

export async function readIdentities(paths: readonly string[]): Promise<Secret<string[]>> {
  const all: string[] = [];
  for (const p of paths) all.push(...parseIdentityFile(await read(p, 'identity file'), `identity file ${p}`));
  return new Secret(all);
}
