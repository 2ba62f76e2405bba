/**
 * Opening an events input (`--input FILE|-`) for `produce` and `recompute`, refusing what cannot
 * be NDJSON text before anything is read or sent: a directory, a compressed or binary file,
 * UTF-16, or bytes that are not UTF-8. The reason names the offending byte by offset and hex
 * value and never echoes the raw bytes (they could be anything, terminal escapes included).
 *
 * Only the start of the input is checked (the first 64 KiB of a file, the first chunk of stdin);
 * invalid UTF-8 further in is a matter for the line that holds it.
 *
 * Lines longer than `maxLineBytes` are cut by `LineLengthLimiter` (src/io/line-limit.ts) as
 * they stream through, so one huge line never sits in memory whole.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { UnreadableInputError } from '../errors';
import { LineLengthLimiter } from '../io/line-limit';

/** Bytes of a file looked at before reading it. */
export const SNIFF_BYTES = 64 * 1024;

export interface OpenedInput {
  stream: Readable;
  /** Size in bytes of a regular file, else null (stdin, a pipe). */
  size: number | null;
}

class NotTextError extends Error {}

/**
 * Opens `path` (`-` for stdin) for reading lines; throws `UnreadableInputError` (exit code 2)
 * when it cannot be opened or does not look like UTF-8 text.
 */
export function openInputFile(path: string, maxLineBytes: number): OpenedInput {
  if (path === '-') {
    // pipeline, not pipe: an error of any stage must reach whoever reads the last one.
    const stream = pipeline(process.stdin, new FirstChunkCheck(), new LineLengthLimiter(maxLineBytes), () => undefined);
    return { stream, size: null };
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new UnreadableInputError(path, err);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new Error('is a directory');
    const head = Buffer.alloc(stat.isFile() ? Math.min(SNIFF_BYTES, stat.size) : 0);
    const read = head.length > 0 ? readSync(fd, head, 0, head.length, 0) : 0;
    const problem = describeNonText(head.subarray(0, read), stat.isFile() && read >= stat.size);
    if (problem) throw new NotTextError(problem);
    const file = createReadStream('', { fd, highWaterMark: 1 << 20, start: 0 });
    const limited = pipeline(file, new LineLengthLimiter(maxLineBytes), () => undefined);
    // recompute sizes its work from the file behind the stream (see recompute.ts `knownSize`).
    Object.assign(limited, { path });
    return { stream: limited, size: stat.isFile() ? stat.size : null };
  } catch (err) {
    closeSync(fd);
    throw new UnreadableInputError(path, err);
  }
}

/**
 * Why `head` (the first bytes of an input) is not UTF-8 text, or null when it is. `complete`
 * says `head` is the whole input (else a multi-byte character may be cut at its end).
 */
export function describeNonText(head: Buffer, complete: boolean): string | null {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip-compressed; decompress it first (gunzip -c FILE | sessionizer … --input -)';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x504b0304) return 'a zip archive, not NDJSON text';
  if (head.length >= 2 && ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff))) {
    return 'UTF-16 text; convert it to UTF-8 first (iconv -f UTF-16 -t UTF-8)';
  }
  const nul = head.indexOf(0);
  if (nul >= 0) return `binary data (a NUL byte at byte ${nul}), not NDJSON text`;
  const bad = firstInvalidUtf8(head, complete);
  if (bad >= 0) {
    const line = countLines(head, bad) + 1;
    return `not UTF-8 text (byte 0x${(head[bad] as number).toString(16).padStart(2, '0')} at byte ${bad}, line ${line}); convert it first (for example iconv -f LATIN1 -t UTF-8)`;
  }
  return null;
}

/** Offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF), or -1. */
export function firstInvalidUtf8(bytes: Buffer, complete = true): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    if (i + need >= n) {
      // The sequence runs past the end: fine if the input goes on, else invalid.
      for (let k = 1; i + k < n; k++) if (((bytes[i + k] as number) & 0xc0) !== 0x80) return i;
      return complete ? i : -1;
    }
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k] as number;
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

function countLines(bytes: Buffer, end: number): number {
  let lines = 0;
  for (let i = bytes.indexOf(10); i >= 0 && i < end; i = bytes.indexOf(10, i + 1)) lines += 1;
  return lines;
}

/** For stdin: checks the first chunk as a file's head is checked, then passes everything on. */
class FirstChunkCheck extends Transform {
  private checked = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.checked) {
      this.checked = true;
      const problem = describeNonText(chunk, false);
      if (problem) {
        callback(new UnreadableInputError('-', problem));
        return;
      }
    }
    callback(null, chunk);
  }
}
