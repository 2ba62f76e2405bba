/**
 * Opens a command's `--input FILE|-` for streaming: stdin for `-`, else the file, refused as
 * unreadable input (exit 2) when it cannot be opened, is a directory, or is plainly not text
 * (src/io/binary-input.ts) — all before the command connects anywhere or truncates an output.
 */
import { createReadStream, fstatSync, openSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { UnreadableInputError } from '../errors';
import { BinaryInputError, refuseBinaryFile } from './binary-input';

/** The input stream, and its size when it is a regular file (for a progress bar). */
export function openInput(path: string): { stream: Readable; size: number | null } {
  if (path === '-') return { stream: process.stdin, size: null };
  try {
    const fd = openSync(path, 'r');
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new Error('is a directory');
    refuseBinaryFile(fd);
    return { stream: createReadStream('', { fd, highWaterMark: 1 << 20 }), size: stat.isFile() ? stat.size : null };
  } catch (err) {
    throw new UnreadableInputError(path, err instanceof BinaryInputError ? err.reason : err);
  }
}
