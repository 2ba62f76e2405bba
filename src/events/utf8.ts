/**
 * A message is UTF-8 (README, "Sending events"). Node's own decoders (`Buffer#toString`, `StringDecoder`) never
 * fail: they put U+FFFD where the bytes are not UTF-8, and the result would then pass as a
 * valid event with its text silently changed. Every path that turns input bytes into text
 * checks them here first and rejects what is not UTF-8, naming where, without quoting the
 * bytes themselves (a binary message would otherwise reach terminals and logs as it is).
 *
 * `isUtf8` (node:buffer, simdutf) validates at several GB/s, so the worker's hot path pays
 * next to nothing for valid messages; locating the first bad byte is done only for the bad ones.
 */
import { isUtf8 } from 'node:buffer';

export { isUtf8 };

/**
 * Where `bytes` stop being UTF-8: the offset of the first byte that starts no valid sequence
 * (a stray continuation byte, an overlong form, a surrogate, a code point above U+10FFFF, or a
 * sequence cut short), or -1 when they are UTF-8. The rules of RFC 3629 / the WHATWG decoder.
 */
export function invalidUtf8Offset(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1;
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    let need: number;
    let lower = 0x80;
    let upper = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lower = 0xa0; // overlong
      if (b === 0xed) upper = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lower = 0x90; // overlong
      if (b === 0xf4) upper = 0x8f; // above U+10FFFF
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      if (k === 1 ? c < lower || c > upper : c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1; // isUtf8 and this scan disagree only if one of them has a bug
}

/** Why `bytes` (known not to be UTF-8) were refused: the offset and value of the first bad byte. */
export function describeInvalidUtf8(bytes: Uint8Array): string {
  const at = invalidUtf8Offset(bytes);
  const where = at < 0 ? 0 : at;
  const value = (bytes[where] ?? 0).toString(16).padStart(2, '0');
  return `not valid UTF-8 (byte 0x${value} at offset ${where})`;
}

/**
 * Text safe to print on one line of a terminal or a log: control characters (C0, DEL, C1),
 * line and paragraph separators, and U+FFFD are written as `\u` escapes (four hex digits). For messages that
 * quote input, such as JSON.parse's (which shows the start of the text it failed on).
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufffd]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
