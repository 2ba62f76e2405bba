/**
 * Refuses an input that is plainly not NDJSON text — compressed data, UTF-16, or anything with
 * NUL bytes (which no JSON text can contain) — with one clear reason, instead of reporting
 * thousands of "lines" of it as invalid events and echoing their bytes to the terminal. Only the
 * first chunk is looked at; a text file with some lines that are not UTF-8 is read on, and those
 * lines are reported one by one.
 */
import { fstatSync, readSync } from 'node:fs';
import { SessionizerError } from '../errors';

/** The start of the input that is looked at. */
const HEAD_BYTES = 64 * 1024;

const SIGNATURES: ReadonlyArray<{ bytes: number[]; what: string; hint: string }> = [
  { bytes: [0x1f, 0x8b], what: 'gzip-compressed data', hint: 'decompress it first, e.g. zcat FILE | sessionizer … --input -' },
  { bytes: [0x28, 0xb5, 0x2f, 0xfd], what: 'zstd-compressed data', hint: 'decompress it first, e.g. zstdcat FILE | sessionizer … --input -' },
  { bytes: [0x42, 0x5a, 0x68], what: 'bzip2-compressed data', hint: 'decompress it first, e.g. bzcat FILE | sessionizer … --input -' },
  { bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], what: 'xz-compressed data', hint: 'decompress it first, e.g. xzcat FILE | sessionizer … --input -' },
  { bytes: [0x50, 0x4b, 0x03, 0x04], what: 'a zip archive', hint: 'extract the NDJSON file from it first' },
  { bytes: [0xff, 0xfe], what: 'UTF-16 text', hint: 'convert it to UTF-8 first, e.g. iconv -f UTF-16 -t UTF-8' },
  { bytes: [0xfe, 0xff], what: 'UTF-16 text', hint: 'convert it to UTF-8 first, e.g. iconv -f UTF-16 -t UTF-8' },
];

/** Why an input starting with `head` is not NDJSON text, or null when it may be. */
export function binaryInputReason(head: Uint8Array): string | null {
  for (const { bytes, what, hint } of SIGNATURES) {
    if (head.length >= bytes.length && bytes.every((b, i) => head[i] === b)) return `not UTF-8 text but ${what} (${hint})`;
  }
  const nul = head.subarray(0, HEAD_BYTES).indexOf(0);
  if (nul >= 0) return `not UTF-8 text but binary data (a NUL byte at offset ${nul})`;
  return null;
}

/** An input refused by `refuseBinaryInput`; the commands name the file and exit 2. */
export class BinaryInputError extends SessionizerError {
  constructor(readonly reason: string) {
    super('UNREADABLE_INPUT', reason);
  }
}

/** The chunks of `input` as buffers, after checking the first one (throws `BinaryInputError`). */
export async function* refuseBinaryInput(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  let first = true;
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (first && buffer.length > 0) {
      first = false;
      const reason = binaryInputReason(buffer);
      if (reason) throw new BinaryInputError(reason);
    }
    yield buffer;
  }
}

/**
 * The same check on an open regular file, before anything else happens (a connection, an
 * output file truncated): reads its head at position 0 without moving the file position, so a
 * stream over `fd` still starts at the beginning. Pipes and terminals are left to
 * `refuseBinaryInput`.
 */
export function refuseBinaryFile(fd: number): void {
  if (!fstatSync(fd).isFile()) return;
  const head = Buffer.alloc(HEAD_BYTES);
  const read = readSync(fd, head, 0, HEAD_BYTES, 0);
  const reason = binaryInputReason(head.subarray(0, read));
  if (reason) throw new BinaryInputError(reason);
}
