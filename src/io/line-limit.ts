/**
 * Cuts over-long lines out of a byte stream as it passes: a line longer than `maxLineBytes`
 * keeps only its first `maxLineBytes + 1` bytes (so whoever reads it still sees that it is too
 * long and reports it) and the rest, up to the next newline, is dropped unread into memory. A
 * 100 MB line thus costs 64 KiB, not 100 MB (or a crash). Every other byte passes unchanged, in
 * the chunks it came in when no line in them is too long.
 */
import { Transform, type TransformCallback } from 'node:stream';

export class LineLengthLimiter extends Transform {
  /** Bytes of the current line passed on so far. */
  private lineBytes = 0;
  /** Dropping the rest of a too-long line until its newline. */
  private dropping = false;
  /** Lines that were cut. */
  cut = 0;

  constructor(private readonly maxLineBytes: number) {
    super();
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, callback: TransformCallback): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    const keep = this.maxLineBytes + 1;
    const parts: Buffer[] = [];
    let whole = true;
    let pos = 0;
    while (pos < bytes.length) {
      const newline = bytes.indexOf(10, pos);
      const end = newline < 0 ? bytes.length : newline;
      const length = end - pos;
      if (this.dropping) {
        whole = false;
      } else if (this.lineBytes + length <= keep) {
        parts.push(bytes.subarray(pos, end));
        this.lineBytes += length;
      } else {
        whole = false;
        parts.push(bytes.subarray(pos, pos + (keep - this.lineBytes)));
        this.lineBytes = keep;
        this.dropping = true;
        this.cut += 1;
      }
      if (newline < 0) break;
      parts.push(NEWLINE);
      this.lineBytes = 0;
      this.dropping = false;
      pos = newline + 1;
    }
    callback(null, whole ? bytes : Buffer.concat(parts));
  }
}

const NEWLINE = Buffer.from('\n');
