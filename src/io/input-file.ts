/**
 * Opens a command's `--input FILE|-` for streaming: stdin for `-`, else the file, refused as
 * unreadable input (exit 2) when it cannot be opened, is a directory, or is plainly not text
 * (src/io/binary-input.ts) — all before the command connects anywhere or truncates an output.
 * A line that is not UTF-8 in a text file is not a reason to refuse the file: it is reported
 * as an invalid line by whoever reads the lines (src/io/line-reader.ts).
 *
 * With `maxLineBytes`, lines longer than that are cut by `LineLengthLimiter` as they stream
 * through (src/io/line-limit.ts), so one huge line never sits in memory whole.
 */
import { createReadStream, fstatSync, openSync } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { UnreadableInputError } from '../errors';
import { BinaryInputError, refuseBinaryFile } from './binary-input';
import { LineLengthLimiter } from './line-limit';

/** The input stream, and its size when it is a regular file (for a progress bar). */
export function openInput(path: string, maxLineBytes?: number): { stream: Readable; size: number | null } {
  const limited = (stream: Readable): Readable =>
    // pipeline, not pipe: an error of any stage must reach whoever reads the last one.
    maxLineBytes === undefined ? stream : pipeline(stream, new LineLengthLimiter(maxLineBytes), () => undefined);
  if (path === '-') return { stream: limited(process.stdin), size: null };
  try {
    const fd = openSync(path, 'r');
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new Error('is a directory');
    refuseBinaryFile(fd);
    const file = createReadStream('', { fd, highWaterMark: 1 << 20 });
    const stream = limited(file);
    // recompute sizes its work from the file behind the stream (src/recompute/recompute.ts `knownSize`).
    if (stream !== file) Object.assign(stream, { path });
    return { stream, size: stat.isFile() ? stat.size : null };
  } catch (err) {
    throw new UnreadableInputError(path, err instanceof BinaryInputError ? err.reason : err);
  }
}
