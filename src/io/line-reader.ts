/**
 * Splits a byte stream into text lines (`\n` or `\r\n`), reporting bytes consumed so callers can
 * show progress. Faster than `readline` for the NDJSON files recalculation reads. Takes any
 * async iterable of chunks (a `Readable` is one).
 *
 * Lines are split on bytes, then decoded: a `\n` byte is never part of a multi-byte UTF-8
 * sequence, so this gives the lines a decoder would. A line whose bytes are not UTF-8 comes out
 * as a `NotUtf8Line` (with why), never as text with U+FFFD in it: events are UTF-8 only,
 * and a replaced character would otherwise pass as part of a valid event.
 */
import { describeInvalidUtf8, isUtf8 } from '../events/utf8';

/** A line that is not UTF-8: why (offset and value of the first bad byte), and the text with U+FFFD for what was not. */
export class NotUtf8Line {
  constructor(
    readonly reason: string,
    readonly lossyText: string,
  ) {}

  static of(bytes: Uint8Array): NotUtf8Line {
    return new NotUtf8Line(describeInvalidUtf8(bytes), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  }
}

export type Line = string | NotUtf8Line;

const EMPTY = Buffer.alloc(0);

export async function* readLines(input: AsyncIterable<Buffer | string>, onBytes?: (bytes: number) => void): AsyncGenerator<Line> {
  let pending: Buffer = EMPTY;
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    onBytes?.(buffer.length);
    const last = buffer.lastIndexOf(10);
    if (last < 0) {
      pending = pending.length > 0 ? Buffer.concat([pending, buffer]) : Buffer.from(buffer);
      continue;
    }
    const whole = pending.length > 0 ? Buffer.concat([pending, buffer.subarray(0, last + 1)]) : buffer.subarray(0, last + 1);
    // A copy: the stream may reuse its chunk's memory once we hand it back.
    pending = last + 1 < buffer.length ? Buffer.from(buffer.subarray(last + 1)) : EMPTY;
    yield* splitLines(whole);
  }
  if (pending.length > 0) yield* splitLines(pending);
}

/** The lines of `bytes` (whole lines; a last one without `\n` counts). */
function* splitLines(bytes: Buffer): Generator<Line> {
  if (isUtf8(bytes)) {
    // The common case: decode everything at once and cut the text.
    const text = bytes.toString('utf8');
    let start = 0;
    let newline: number;
    while ((newline = text.indexOf('\n', start)) >= 0) {
      yield stripCr(text.slice(start, newline));
      start = newline + 1;
    }
    if (start < text.length) yield stripCr(text.slice(start));
    return;
  }
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(10, start);
    const next = end < 0 ? bytes.length : end + 1;
    if (end < 0) end = bytes.length;
    const line = bytes.subarray(start, end);
    yield isUtf8(line) ? stripCr(line.toString('utf8')) : NotUtf8Line.of(line[line.length - 1] === 13 ? line.subarray(0, -1) : line);
    start = next;
  }
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
