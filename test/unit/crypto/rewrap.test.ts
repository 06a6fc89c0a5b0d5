import { describe, it, expect } from 'vitest';
import { generateIdentityFile, makeHeader, openHeader, rewrapHeader } from '../../../src/crypto/age.js';

describe('rewrapHeader (key rotation)', () => {
  for (const pq of [false, true]) {
    it(`wraps the same file key for new ${pq ? 'post-quantum' : 'X25519'} recipients, with a valid MAC; the old identity no longer opens it`, async () => {
      const oldId = await generateIdentityFile(pq);
      const a = await generateIdentityFile(pq);
      const b = await generateIdentityFile(pq);
      const { header, fileKey } = await makeHeader({ recipients: [oldId.recipient] });
      const fresh = await rewrapHeader(fileKey, [a.recipient, b.recipient]);
      expect(fresh.equals(header)).toBe(false);
      for (const id of [a, b]) expect((await openHeader(fresh, { identities: [id.identity], passphrases: [] })).equals(fileKey)).toBe(true);
      await expect(openHeader(fresh, { identities: [oldId.identity], passphrases: [] })).rejects.toMatchObject({ code: 'NO_IDENTITY' });
      // A flipped byte in the stanzas: the MAC (or the stanza) refuses it.
      const bad = Buffer.from(fresh);
      bad[30] = bad[30]! ^ 1;
      await expect(openHeader(bad, { identities: [a.identity], passphrases: [] })).rejects.toThrow();
    });
  }
});
