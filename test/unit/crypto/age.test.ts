import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Encrypter, Decrypter, generateX25519Identity, generateHybridIdentity, identityToRecipient } from 'age-encryption';
import { AgeEncryptStream, AgeDecryptStream, makeHeader, openHeader, findHeaderEnd, parseIdentityFile, recipientProblem, encryptedSize } from '../../../src/crypto/age.js';
import { tempDir } from '../../support/tmp.js';

const SIZES = [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 3 * 64 * 1024, 1024 * 1024 + 17];

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Feed in odd-sized pieces so chunk boundaries never line up with writes. */
function pieces(b: Buffer): Readable {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; ) {
    const n = 1 + ((i * 7919) % 50000);
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return Readable.from(out);
}

async function ourEncrypt(plain: Buffer, recipients: string[]): Promise<Buffer> {
  const { header, fileKey } = await makeHeader({ recipients });
  const enc = new AgeEncryptStream(header, fileKey);
  const out = collect(enc);
  await pipeline(pieces(plain), enc);
  return out;
}

async function ourDecrypt(file: Buffer, identities: string[]): Promise<Buffer> {
  const end = findHeaderEnd(file);
  const key = await openHeader(file.subarray(0, end), { identities, passphrases: [] });
  const dec = new AgeDecryptStream(key);
  const out = collect(dec);
  out.catch(() => undefined); // the pipeline reports the error
  await pipeline(pieces(file.subarray(end)), dec);
  return out;
}

function hasAge(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v age'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The age CLI with `input` on stdin: its stdout; a failed run rejects with its stderr. */
function ageCli(args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile('age', args, { encoding: 'buffer', maxBuffer: 1 << 26 }, (err, stdout, stderr) =>
      err ? reject(new Error(`age ${args.join(' ')}: ${err.message}\n${stderr.toString()}`)) : resolve(stdout),
    );
    child.stdin!.on('error', () => undefined); // a failed age may close stdin early; the exit says why
    child.stdin!.end(input);
  });
}

describe('age payload via node:crypto is byte-compatible with age', () => {
  for (const size of SIZES) {
    it(`size ${size}: age-encryption reads what we write, and we read what it writes`, async () => {
      const id = await generateX25519Identity();
      const rcpt = await identityToRecipient(id);
      const plain = randomBytes(size);
      const ours = await ourEncrypt(plain, [rcpt]);
      expect(ours.length).toBe(encryptedSize(size, findHeaderEnd(ours)));
      const d = new Decrypter();
      d.addIdentity(id);
      expect(Buffer.from(await d.decrypt(ours)).equals(plain)).toBe(true);
      const e = new Encrypter();
      e.addRecipient(rcpt);
      const theirs = Buffer.from(await e.encrypt(plain));
      expect((await ourDecrypt(theirs, [id])).equals(plain)).toBe(true);
    });
  }

  it('the reference age CLI reads what we write and we read what it writes', async () => {
    if (!hasAge()) throw new Error('this test needs the reference "age" CLI: install the age package (.ci/run installs it)');
    const dir = tempDir('pgbackup-age-');
    const idFile = join(dir, 'id');
    execFileSync('age-keygen', ['-o', idFile], { stdio: 'ignore' });
    const ids = parseIdentityFile(readFileSync(idFile, 'utf8'), idFile);
    const rcpt = execFileSync('age-keygen', ['-y', idFile]).toString().trim();
    // Every size at once: the age processes overlap instead of waiting for one another.
    await Promise.all(
      [...SIZES, 5 * 1024 * 1024 + 3].map(async (size, i) => {
        const plain = randomBytes(size);
        const ours = await ourEncrypt(plain, [rcpt]);
        expect((await ageCli(['-d', '-i', idFile], ours)).equals(plain), `age -d, size ${size}`).toBe(true);
        const pf = join(dir, `p${i}`);
        writeFileSync(pf, plain);
        const theirs = await ageCli(['-r', rcpt, pf]);
        expect((await ourDecrypt(theirs, ids)).equals(plain), `age -r, size ${size}`).toBe(true);
      }),
    );
  });

  it('post-quantum recipients work', async () => {
    const id = await generateHybridIdentity();
    const rcpt = await identityToRecipient(id);
    expect(rcpt.startsWith('age1pq1')).toBe(true);
    const plain = randomBytes(70000);
    expect((await ourDecrypt(await ourEncrypt(plain, [rcpt]), [id])).equals(plain)).toBe(true);
  });

  it('passphrases work, and a wrong one is refused', async () => {
    const { header, fileKey } = await makeHeader({ recipients: [], passphrase: 'pw one', scryptLogN: 10 });
    expect((await openHeader(header, { identities: [], passphrases: ['pw one'] })).equals(fileKey)).toBe(true);
    await expect(openHeader(header, { identities: [], passphrases: ['pw two'] })).rejects.toMatchObject({ exitCode: 5 });
  });

  it('detects a wrong identity, truncation at any point, a flipped byte, and trailing data', async () => {
    const id = await generateX25519Identity();
    const other = await generateX25519Identity();
    const rcpt = await identityToRecipient(id);
    const plain = randomBytes(200_000);
    const file = await ourEncrypt(plain, [rcpt]);
    await expect(ourDecrypt(file, [other])).rejects.toMatchObject({ exitCode: 5, code: 'NO_IDENTITY' });
    const end = findHeaderEnd(file);
    for (const cut of [end + 10, end + 16 + 65536 + 16, file.length - 1, file.length - 17]) {
      await expect(ourDecrypt(file.subarray(0, cut), [id])).rejects.toMatchObject({ exitCode: 5 });
    }
    const flipped = Buffer.from(file);
    flipped[end + 100_000]! ^= 0x80;
    await expect(ourDecrypt(flipped, [id])).rejects.toMatchObject({ exitCode: 5, code: 'PAYLOAD_TAMPERED' });
    await expect(ourDecrypt(Buffer.concat([file, Buffer.from('x')]), [id])).rejects.toMatchObject({ exitCode: 5 });
    const badHeader = Buffer.from(file);
    badHeader[30]! ^= 0x01;
    await expect(ourDecrypt(badHeader, [id])).rejects.toMatchObject({ exitCode: 5 });
  });

  it('validates recipients and identity files', () => {
    expect(recipientProblem('age1xyz')).toMatch(/not a valid/);
    expect(recipientProblem('ssh-ed25519 AAAA')).toMatch(/not an age recipient/);
    expect(() => parseIdentityFile('# nothing\n', 'f')).toThrow(/no age identity/);
    expect(() => parseIdentityFile('AGE-SECRET-KEY-1BAD\n', 'f')).toThrow(/line 1: malformed/);
    expect(() => parseIdentityFile('hello\n', 'f')).toThrow(/line 1: not an age identity/);
  });
});
