/**
 * Names (schemas, tables) as bytes in a PostgreSQL encoding -> the string the manifest keeps.
 *
 * pg_dump writes in the database's encoding (its `SET client_encoding = '...'` says which), and
 * the restore's row-count check reads the catalog's raw bytes: both sides go through
 * `decodeName`, so they agree. UTF8 and every encoding Node's TextDecoder knows decode to
 * Unicode; SQL_ASCII (bytes without a meaning), an encoding Node cannot decode, or bytes that are
 * not valid in their encoding keep every ASCII byte as is and write each byte >= 0x80 as `\xNN`
 * (lower-case hex): byte-exact, never a replacement character.
 */

/** PostgreSQL's spelling of an encoding name, cleaned as its clean_encoding_name does: lower case, letters and digits. */
function clean(encoding: string): string {
  return encoding.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/**
 * TextDecoder labels (WHATWG Encoding Standard) for PostgreSQL encodings, server and client
 * ones, keyed by the cleaned name (aliases included). Only exact matches are listed: LATIN1 is
 * Node's `latin1` (WHATWG's "iso-8859-1" label is windows-1252); LATIN5 is windows-1254 outside
 * 0x80-0x9F (see C1_EXACT). Missing here (so escaped): LATIN10, EUC_TW, EUC_JIS_2004,
 * SHIFT_JIS_2004, MULE_INTERNAL, JOHAB.
 */
const LABELS: Record<string, string> = {
  utf8: 'utf-8',
  unicode: 'utf-8',
  latin2: 'iso-8859-2',
  iso88592: 'iso-8859-2',
  latin3: 'iso-8859-3',
  iso88593: 'iso-8859-3',
  latin4: 'iso-8859-4',
  iso88594: 'iso-8859-4',
  latin5: 'windows-1254',
  iso88599: 'windows-1254',
  latin6: 'iso-8859-10',
  iso885910: 'iso-8859-10',
  latin7: 'iso-8859-13',
  iso885913: 'iso-8859-13',
  latin8: 'iso-8859-14',
  iso885914: 'iso-8859-14',
  latin9: 'iso-8859-15',
  iso885915: 'iso-8859-15',
  iso88595: 'iso-8859-5',
  iso88596: 'iso-8859-6',
  iso88597: 'iso-8859-7',
  iso88598: 'iso-8859-8',
  win1250: 'windows-1250',
  win1251: 'windows-1251',
  win: 'windows-1251',
  win1252: 'windows-1252',
  win1253: 'windows-1253',
  win1254: 'windows-1254',
  win1255: 'windows-1255',
  win1256: 'windows-1256',
  win1257: 'windows-1257',
  win1258: 'windows-1258',
  abc: 'windows-1258',
  tcvn: 'windows-1258',
  tcvn5712: 'windows-1258',
  vscii: 'windows-1258',
  win866: 'ibm866',
  alt: 'ibm866',
  win874: 'windows-874',
  koi8r: 'koi8-r',
  koi8: 'koi8-r',
  koi8u: 'koi8-u',
  eucjp: 'euc-jp',
  euckr: 'euc-kr',
  euccn: 'gbk',
  sjis: 'shift_jis',
  shiftjis: 'shift_jis',
  mskanji: 'shift_jis',
  big5: 'big5',
  gbk: 'gbk',
  cp936: 'gbk',
  gb18030: 'gb18030',
  uhc: 'euc-kr',
};

/** Encodings whose TextDecoder maps 0x80-0x9F to other characters than PostgreSQL's C1 controls. */
const C1_EXACT = new Set(['latin5', 'iso88599']);

const decoders = new Map<string, TextDecoder | null>();

function decoderFor(label: string): TextDecoder | null {
  let d = decoders.get(label);
  if (d === undefined) {
    try {
      d = new TextDecoder(label, { fatal: true, ignoreBOM: true });
    } catch {
      d = null; // this Node lacks it (small-icu builds): escape instead
    }
    decoders.set(label, d);
  }
  return d;
}

/** ASCII bytes as they are, every byte >= 0x80 as `\xNN`. */
export function escapeHighBytes(bytes: Buffer): string {
  let out = '';
  let run = 0; // start of the pending ASCII run
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x80) continue;
    if (i > run) out += bytes.toString('latin1', run, i);
    out += `\\x${b.toString(16).padStart(2, '0')}`;
    run = i + 1;
  }
  return run === 0 ? bytes.toString('latin1') : out + bytes.toString('latin1', run);
}

/** True when names in `encoding` decode to Unicode (false: they are kept as escaped bytes). */
export function decodesToUnicode(encoding: string): boolean {
  const c = clean(encoding);
  if (c === 'latin1' || c === 'iso88591') return true;
  const label = LABELS[c];
  return label !== undefined && decoderFor(label) !== null;
}

/** A name's bytes in PostgreSQL encoding `encoding` (e.g. "LATIN1", "SQL_ASCII") as the manifest keeps it. */
export function decodeName(bytes: Buffer, encoding: string): string {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  // Every server encoding is an ASCII superset.
  if (ascii) return bytes.toString('latin1');
  const c = clean(encoding);
  if (c === 'latin1' || c === 'iso88591') return bytes.toString('latin1');
  const label = LABELS[c];
  const d = label ? decoderFor(label) : null;
  if (!d) return escapeHighBytes(bytes);
  try {
    if (!C1_EXACT.has(c)) return d.decode(bytes);
    // PostgreSQL maps 0x80-0x9F to U+0080-U+009F; windows-1254 has other characters there.
    let out = '';
    let run = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (b < 0x80 || b > 0x9f) continue;
      if (i > run) out += d.decode(bytes.subarray(run, i));
      out += String.fromCharCode(b);
      run = i + 1;
    }
    return out + d.decode(bytes.subarray(run));
  } catch {
    return escapeHighBytes(bytes); // not valid in its encoding: keep the bytes
  }
}
