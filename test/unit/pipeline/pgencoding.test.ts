import { describe, it, expect } from 'vitest';
import { decodeName, decodesToUnicode, escapeHighBytes } from '../../../src/pipeline/pgencoding.js';

describe('decodeName', () => {
  it('decodes UTF8 and LATIN1 to Unicode', () => {
    expect(decodeName(Buffer.from('café', 'utf8'), 'UTF8')).toBe('café');
    expect(decodeName(Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'LATIN1')).toBe('café');
    // LATIN1 is ISO 8859-1, not windows-1252: 0x80 stays U+0080.
    expect(decodeName(Buffer.from([0x80]), 'LATIN1')).toBe('\u0080');
  });
  it('keeps a leading BOM of a UTF8 name', () => {
    expect(decodeName(Buffer.from('\ufeffx', 'utf8'), 'UTF8')).toBe('\ufeffx');
  });
  it('decodes other encodings by their exact tables', () => {
    expect(decodeName(Buffer.from([0xc1, 0xc2]), 'KOI8R')).toBe('аб');
    expect(decodeName(Buffer.from([0xe0]), 'WIN1251')).toBe('а');
    expect(decodeName(Buffer.from([0xa1]), 'LATIN2')).toBe('Ą');
    expect(decodeName(Buffer.from([0xd0, 0x80]), 'LATIN5')).toBe('Ğ\u0080');
    expect(decodeName(Buffer.from([0xa4, 0xa2]), 'EUC_JP')).toBe('あ');
    expect(decodeName(Buffer.from([0xe9]), 'latin-1')).toBe('é');
  });
  it('escapes SQL_ASCII high bytes byte-exact', () => {
    expect(decodeName(Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9]), 'SQL_ASCII')).toBe('caf\\xc3\\xa9');
    expect(decodeName(Buffer.from('plain'), 'SQL_ASCII')).toBe('plain');
    expect(decodesToUnicode('SQL_ASCII')).toBe(false);
  });
  it('escapes bytes that are invalid in their encoding, and encodings Node cannot decode', () => {
    expect(decodeName(Buffer.from([0x61, 0xff]), 'UTF8')).toBe('a\\xff');
    expect(decodeName(Buffer.from([0xa4, 0xa2]), 'MULE_INTERNAL')).toBe('\\xa4\\xa2');
    expect(escapeHighBytes(Buffer.from([0x80, 0x41]))).toBe('\\x80A');
  });
});
