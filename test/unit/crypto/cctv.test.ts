// The C2SP CCTV age test vectors (the cctv-age package, as typage tests itself) run through our
// read path: openBackup on a folder object (ranged read, magic check, header split, typage's
// header decryption, our own STREAM decryptor). A vector that should succeed must give its
// payload's sha256; one that should fail must fail with one of our classified errors, never a
// crash or a bug. Where we read differently on purpose, the vector is named below with why.
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inflateSync } from 'node:zlib';
import * as cctv from 'cctv-age';
import { openBackup } from '../../../src/ops/open.js';
import { FolderStorage } from '../../../src/storage/folder.js';
import { CryptoError, PgBackupError, UsageError, classify } from '../../../src/support/errors.js';
import type { Context } from '../../../src/support/context.js';
import { tempDir } from '../../support/tmp.js';

interface Vector {
  name: string;
  expect: 'success' | 'no match' | 'HMAC failure' | 'header failure' | 'armor failure' | 'payload failure';
  payload: string | undefined;
  identities: string[];
  passphrases: string[];
  armored: boolean;
  body: Buffer;
}

function parseVector(name: string, file: Uint8Array): Vector {
  const buf = Buffer.from(file);
  const split = buf.indexOf('\n\n');
  const meta = new Map<string, string[]>();
  for (const line of buf.subarray(0, split).toString('utf8').split('\n')) {
    const i = line.indexOf(': ');
    const k = line.slice(0, i);
    meta.set(k, [...(meta.get(k) ?? []), line.slice(i + 2)]);
  }
  let body = buf.subarray(split + 2);
  if (meta.get('compressed')?.[0] === 'zlib') body = inflateSync(body);
  return {
    name,
    expect: meta.get('expect')![0] as Vector['expect'],
    payload: meta.get('payload')?.[0],
    identities: meta.get('identity') ?? [],
    passphrases: meta.get('passphrase') ?? [],
    armored: meta.get('armored')?.[0] === 'yes',
    body,
  };
}

const VECTORS = Object.entries(cctv as unknown as Record<string, Uint8Array>)
  .filter(([n, v]) => n !== 'default' && v instanceof Uint8Array)
  .map(([n, v]) => parseVector(n, v));

/**
 * Where our reader deliberately differs from a general age implementation. Backups are binary
 * age files written by pgbackup, so ASCII armor is never read, whatever the vector expects: a
 * file that starts with the armor line is refused as a usage error (exit 2, "decrypt it with
 * age -d first"); one that starts otherwise (leading whitespace or garbage, lowercase, another
 * type) is not age by its magic bytes, a CryptoError (exit 5), like any damaged object.
 */
const ARMOR_LINE = '-----BEGIN AGE ENCRYPTED FILE-----';
function deliberate(v: Vector): { outcome: typeof UsageError | typeof CryptoError; why: string } | null {
  if (!v.armored) return null;
  return v.body.toString('latin1').startsWith(ARMOR_LINE)
    ? { outcome: UsageError, why: 'ASCII armor is not read: refused as a usage error' }
    : { outcome: CryptoError, why: 'ASCII armor is not read; its first bytes are not age: refused as damaged data' };
}

const ctx = {
  signal: new AbortController().signal,
  env: {},
  log: { info() {}, warn() {}, debug() {}, error() {} },
  out() {},
  isTTY: false,
} as unknown as Context;

const dir = tempDir('pgbackup-cctv-');
const storage = new FolderStorage(dir);

/** Our read path over the vector stored as a backup object; the plaintext's sha256. */
async function read(v: Vector): Promise<string> {
  const key = `${v.name}.sql.age`;
  writeFileSync(join(dir, key), v.body);
  const opened = await openBackup(ctx, { storage, key, display: key, size: v.body.length }, { identities: v.identities, passphrases: v.passphrases });
  const h = createHash('sha256');
  await pipeline([...opened.stages, new Writable({ write: (c: Buffer, _e, cb) => (h.update(c), cb()) })]);
  return h.digest('hex');
}

describe('C2SP CCTV age vectors through our reader', () => {
  it('the package has the vectors (a broken install must not pass as zero vectors)', () => {
    expect(VECTORS.length).toBeGreaterThan(100);
    expect(VECTORS.filter((v) => v.expect === 'success').length).toBeGreaterThan(20);
  });

  for (const v of VECTORS) {
    const d = deliberate(v);
    const title = d ? `${v.name}: ${v.expect} in age; here: ${d.why}` : `${v.name}: ${v.expect}`;
    it(title, async () => {
      const r = await read(v).then((sha) => ({ sha }), (e: unknown) => ({ e }));
      if (d) {
        expect('e' in r && r.e instanceof d.outcome, JSON.stringify(r)).toBe(true);
        return;
      }
      if (v.expect === 'success') {
        if ('e' in r) throw r.e;
        expect(r.sha).toBe(v.payload);
        return;
      }
      expect('e' in r, 'must fail').toBe(true);
      const e = (r as { e: unknown }).e;
      // A classified failure, never a bug: damaged or undecryptable data is a CryptoError (exit 5).
      expect(e, String(e)).toBeInstanceOf(PgBackupError);
      expect(classify(e)).toBeInstanceOf(CryptoError);
    });
  }
});
