/**
 * The only bridge between Node streams and age.
 *
 * `age-encryption` does the header: recipients (X25519, post-quantum hybrid), scrypt
 * passphrases, the header MAC. The payload (age's STREAM: ChaCha20-Poly1305 over 64 KiB
 * chunks, key = HKDF-SHA256(file key, nonce, "payload")) is done here with node:crypto,
 * which runs natively and several times faster than the pure-JavaScript cipher; the bytes
 * are identical to what age and age-encryption write and read (tests hold that).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import {
  Decrypter,
  Encrypter,
  generateHybridIdentity,
  generateX25519Identity,
  identityToRecipient,
  type Recipient,
  type Stanza,
} from 'age-encryption';
import { CryptoError, UsageError, messageOf } from '../support/errors.js';

/** scrypt work factor (log2 N) for passphrase encryption: age's default. */
export const DEFAULT_SCRYPT_LOG_N = 18;
/** PGBACKUP_SCRYPT_WORK_FACTOR's range: under 10 is too weak to offer, over 22 takes minutes and GiBs. */
export const MIN_SCRYPT_LOG_N = 10;
export const MAX_SCRYPT_LOG_N = 22;

export const CHUNK = 64 * 1024;
const TAG = 16;
const ENC_CHUNK = CHUNK + TAG;
const NONCE_LEN = 16;
const MAX_HEADER = 1024 * 1024;

export type RecipientKind = 'pq' | 'classic';

export function recipientKind(r: string): RecipientKind {
  return r.startsWith('age1pq1') || r.startsWith('age1tagpq1') ? 'pq' : 'classic';
}

/** null when `r` is a recipient age can encrypt to, else what is wrong with it. */
export function recipientProblem(r: string): string | null {
  if (!r.startsWith('age1')) return 'not an age recipient (expected age1... or age1pq1...)';
  try {
    new Encrypter().addRecipient(r);
    return null;
  } catch {
    return 'not a valid age recipient (bad encoding or checksum)';
  }
}

/** Parse an identity file as age-keygen and `pgbackup keygen` write it. */
export function parseIdentityFile(text: string, source: string): string[] {
  const ids: string[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('AGE-PLUGIN-')) {
      throw new UsageError(`${source}: line ${i + 1}: age plugin identities are not supported`);
    }
    if (!line.startsWith('AGE-SECRET-KEY-')) {
      throw new UsageError(`${source}: line ${i + 1}: not an age identity (expected AGE-SECRET-KEY-...)`);
    }
    try {
      new Decrypter().addIdentity(line);
    } catch {
      throw new UsageError(`${source}: line ${i + 1}: malformed age identity`);
    }
    ids.push(line);
  });
  if (ids.length === 0) throw new UsageError(`${source}: holds no age identity`);
  return ids;
}

export async function recipientOf(identity: string): Promise<string> {
  try {
    return await identityToRecipient(identity);
  } catch (e) {
    throw new UsageError('malformed age identity', { cause: e });
  }
}

export async function generateIdentityFile(pq: boolean, now = new Date()): Promise<{ identity: string; recipient: string; text: string }> {
  const identity = pq ? await generateHybridIdentity() : await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  const text = `# created: ${now.toISOString().replace(/\.\d{3}Z$/, 'Z')}\n# public key: ${recipient}\n${identity}\n`;
  return { identity, recipient, text };
}

export interface EncryptOptions {
  recipients: readonly string[];
  passphrase?: string | undefined;
  /** scrypt work factor (log2 N) for passphrases; age's default is 18. */
  scryptLogN?: number;
}

function headerEnd(buf: Buffer): number {
  // The header ends with the line "--- <mac>\n".
  const mac = buf.indexOf('\n---');
  if (mac < 0) return -1;
  const nl = buf.indexOf(0x0a, mac + 1);
  return nl < 0 ? -1 : nl + 1;
}

/** Build an age header and the file key it wraps. */
export async function makeHeader(opts: EncryptOptions): Promise<{ header: Buffer; fileKey: Buffer }> {
  const e = new Encrypter();
  let captured: Uint8Array | null = null;
  try {
    if (opts.passphrase !== undefined) {
      e.setPassphrase(opts.passphrase);
      e.setScryptWorkFactor(opts.scryptLogN ?? DEFAULT_SCRYPT_LOG_N);
    } else {
      if (opts.recipients.length === 0) throw new UsageError('no age recipient given');
      for (const r of opts.recipients) e.addRecipient(r);
      const capture: Recipient = {
        wrapFileKey(fileKey: Uint8Array): Stanza[] {
          captured = fileKey.slice();
          return [];
        },
      };
      e.addRecipient(capture);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`age: ${messageOf(err)}`, { cause: err });
  }
  const whole = Buffer.from(await e.encrypt(new Uint8Array(0)));
  const end = headerEnd(whole);
  if (end < 0) throw new CryptoError('AGE_HEADER', 'age-encryption wrote no header');
  const header = whole.subarray(0, end);
  if (captured === null) {
    const d = new Decrypter();
    d.addPassphrase(opts.passphrase!);
    captured = await d.decryptHeader(header);
  }
  return { header: Buffer.from(header), fileKey: Buffer.from(captured) };
}

function payloadKey(fileKey: Buffer, nonce: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

function chunkNonce(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(counter, 5, 6);
  n[11] = last ? 1 : 0;
  return n;
}

/** A FIFO of buffers that hands out exact-length slices without copying more than needed. */
class ByteQueue {
  private bufs: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    if (b.length === 0) return;
    this.bufs.push(b);
    this.length += b.length;
  }
  take(n: number): Buffer {
    if (n > this.length) throw new RangeError('ByteQueue underflow');
    const first = this.bufs[0];
    if (first && first.length === n) {
      this.bufs.shift();
      this.length -= n;
      return first;
    }
    if (first && first.length > n) {
      this.bufs[0] = first.subarray(n);
      this.length -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const b = this.bufs[0]!;
      const k = Math.min(b.length, n - off);
      b.copy(out, off, 0, k);
      off += k;
      if (k === b.length) this.bufs.shift();
      else this.bufs[0] = b.subarray(k);
    }
    this.length -= n;
    return out;
  }
}

/** Encrypts a byte stream into an age file (header, nonce, STREAM payload). */
export class AgeEncryptStream extends Transform {
  private readonly key: Buffer;
  private readonly q = new ByteQueue();
  private counter = 0;
  constructor(header: Buffer, fileKey: Buffer) {
    super();
    const nonce = randomBytes(NONCE_LEN);
    this.key = payloadKey(fileKey, nonce);
    this.push(Buffer.concat([header, nonce]));
  }
  private seal(plain: Buffer, last: boolean): Buffer {
    const c = createCipheriv('chacha20-poly1305', this.key, chunkNonce(this.counter++, last), { authTagLength: TAG });
    const body = c.update(plain);
    c.final();
    return Buffer.concat([body, c.getAuthTag()]);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.q.push(chunk);
    // Keep at least one byte back: the last chunk must carry the "last" flag.
    while (this.q.length > CHUNK) this.push(this.seal(this.q.take(CHUNK), false));
    cb();
  }
  override _flush(cb: TransformCallback): void {
    this.push(this.seal(this.q.take(this.q.length), true));
    cb();
  }
}

export interface DecryptSecrets {
  identities: readonly string[];
  passphrases: readonly string[];
}

/** Unwrap the file key from a complete header; a typed error when nothing matches. */
export async function openHeader(header: Buffer, secrets: DecryptSecrets): Promise<Buffer> {
  const d = new Decrypter();
  for (const i of secrets.identities) d.addIdentity(i);
  for (const p of secrets.passphrases) d.addPassphrase(p);
  if (secrets.identities.length + secrets.passphrases.length === 0) {
    throw new UsageError('the backup is age-encrypted: give --identity FILE or --passphrase-file FILE (or PGBACKUP_IDENTITY_FILE / PGBACKUP_PASSPHRASE_FILE)');
  }
  try {
    return Buffer.from(await d.decryptHeader(header));
  } catch (e) {
    const m = messageOf(e);
    if (/no identity matched/.test(m)) {
      throw new CryptoError('NO_IDENTITY', 'no identity matches: none of the given identities or passphrases can decrypt this backup', { cause: e });
    }
    if (/HMAC/.test(m)) throw new CryptoError('HEADER_TAMPERED', 'the age header is damaged or was tampered with (header MAC mismatch)', { cause: e });
    throw new CryptoError('BAD_HEADER', `cannot decrypt the age header: ${m}`, { cause: e });
  }
}

/** Split the age header off the first bytes of a file; -1 while more bytes are needed. */
export function findHeaderEnd(head: Buffer): number {
  const end = headerEnd(head);
  if (end < 0 && head.length > MAX_HEADER) {
    throw new CryptoError('BAD_HEADER', 'not an age file: no header end within 1 MiB');
  }
  return end;
}

/**
 * Decrypts the payload (nonce + STREAM) that follows a header whose file key is known.
 * Every chunk is authenticated; a cut or altered payload fails with CryptoError (exit 5)
 * and nothing after the first bad chunk is let through.
 */
export class AgeDecryptStream extends Transform {
  private key: Buffer | null = null;
  private readonly q = new ByteQueue();
  private counter = 0;
  constructor(private readonly fileKey: Buffer) {
    super();
  }
  private open(c: Buffer, last: boolean): Buffer {
    const d = createDecipheriv('chacha20-poly1305', this.key!, chunkNonce(this.counter, last), { authTagLength: TAG });
    d.setAuthTag(c.subarray(c.length - TAG));
    const body = d.update(c.subarray(0, c.length - TAG));
    try {
      d.final();
    } catch {
      throw new CryptoError(
        'PAYLOAD_TAMPERED',
        last
          ? `age payload chunk ${this.counter} failed authentication: the data is truncated or was tampered with`
          : `age payload chunk ${this.counter} failed authentication: the data was tampered with`,
      );
    }
    this.counter++;
    return body;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.q.push(chunk);
      if (this.key === null) {
        if (this.q.length < NONCE_LEN) return cb();
        this.key = payloadKey(this.fileKey, this.q.take(NONCE_LEN));
      }
      while (this.q.length > ENC_CHUNK) this.push(this.open(this.q.take(ENC_CHUNK), false));
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
  override _flush(cb: TransformCallback): void {
    try {
      if (this.key === null) throw new CryptoError('TRUNCATED', 'the age file is truncated: no payload');
      const rest = this.q.length;
      if (rest < TAG) throw new CryptoError('TRUNCATED', 'the age payload is truncated');
      if (rest === TAG && this.counter > 0) throw new CryptoError('TRUNCATED', 'the age payload ends with an empty chunk: malformed or truncated');
      this.push(this.open(this.q.take(rest), true));
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
}

/** Plaintext size -> age payload size (nonce + chunks), for a header of `headerLen` bytes. */
export function encryptedSize(plain: number, headerLen: number): number {
  const chunks = Math.max(1, Math.ceil(plain / CHUNK));
  return headerLen + NONCE_LEN + plain + chunks * TAG;
}

/** The age v1 header for `stanzas`, with its MAC: HMAC-SHA256 keyed by HKDF-SHA256(file key, "", "header"). */
export function encodeHeaderFor(stanzas: ReadonlyArray<{ args: string[]; body: Uint8Array }>, fileKey: Buffer): Buffer {
  const lines: string[] = ['age-encryption.org/v1\n'];
  for (const st of stanzas) {
    lines.push('-> ' + st.args.join(' ') + '\n');
    const body = Buffer.from(st.body);
    for (let i = 0; i < body.length; i += 48) lines.push(body.subarray(i, Math.min(i + 48, body.length)).toString('base64').replace(/=+$/, '') + '\n');
    // A body whose last line is full ends with an empty line.
    if (body.length % 48 === 0) lines.push('\n');
  }
  lines.push('---');
  const noMac = Buffer.from(lines.join(''), 'utf8');
  const macKey = Buffer.from(hkdfSync('sha256', fileKey, Buffer.alloc(0), 'header', 32));
  const mac = createHmac('sha256', macKey).update(noMac).digest();
  return Buffer.concat([noMac, Buffer.from(' ' + mac.toString('base64').replace(/=+$/, '') + '\n')]);
}

/**
 * A new header wrapping an existing file key for `recipients` (key rotation): the payload,
 * encrypted under that file key, stays as it is. The stanzas come from age-encryption's own
 * recipient implementations (X25519, post-quantum hybrid), reached through an Encrypter.
 */
export async function rewrapHeader(fileKey: Buffer, recipients: readonly string[]): Promise<Buffer> {
  if (recipients.length === 0) throw new UsageError('no age recipient given');
  const e = new Encrypter();
  try {
    for (const r of recipients) e.addRecipient(r);
  } catch (err) {
    throw new UsageError(`age: ${messageOf(err)}`, { cause: err });
  }
  // age-encryption keeps the parsed recipients in a field its types call private; their
  // wrapFileKey is the public Recipient interface. Checked, so a change there fails loudly.
  const parsed = (e as unknown as { recipients?: unknown }).recipients;
  if (!Array.isArray(parsed) || parsed.length !== recipients.length || !parsed.every((r) => typeof (r as Recipient)?.wrapFileKey === 'function')) {
    throw new CryptoError('AGE_INTERNAL', 'this version of age-encryption does not expose its recipients as expected: cannot re-wrap a file key');
  }
  const stanzas: Stanza[] = [];
  for (const r of parsed as Recipient[]) stanzas.push(...(await r.wrapFileKey(new Uint8Array(fileKey))));
  return encodeHeaderFor(stanzas, fileKey);
}
