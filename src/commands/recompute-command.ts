/**
 * `sessionizer recompute --input FILE|- [--output FILE|-] [--timeout-minutes N] [--rejects FILE]`:
 * wires files, progress and reporting around the offline recalculation.
 */
import { createReadStream, createWriteStream, fstatSync, openSync, type WriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { SingleBar } from 'cli-progress';
import { UnreadableInputError, UsageError } from '../errors';
import { LineWriter } from '../io/line-writer';
import { recompute, type RecomputeStats } from '../recompute/recompute';

export interface RecomputeCommandOptions {
  input: string;
  output: string;
  timeoutMinutes: number;
  rejects?: string;
  bufferEvents?: number;
}

/** How many invalid lines are described one by one on stderr; the rest are counted. */
const LISTED_INVALID_LINES = 100;

export async function runRecompute(options: RecomputeCommandOptions): Promise<RecomputeStats> {
  const started = Date.now();
  const { stream: input, size } = openInput(options.input);
  const output = options.output === '-' ? process.stdout : openOutput(options.output);
  const rejects = options.rejects ? new LineWriter(openOutput(options.rejects)) : null;
  const bar = size !== null && process.stderr.isTTY ? newBar() : null;

  let readBytes = 0;
  // Described invalid lines; held back while a progress bar owns the terminal.
  const invalidLines: string[] = [];
  let invalidLinesListed = 0;
  const report = (text: string) => (bar ? invalidLines.push(text) : process.stderr.write(text));
  bar?.start(size ?? 0, 0, { phase: 'reading' });
  const stats = await recompute(input, output, {
    timeoutMs: options.timeoutMinutes * 60_000,
    maxBufferedEvents: options.bufferEvents,
    onReadBytes: (bytes) => {
      readBytes += bytes;
      bar?.update(readBytes);
    },
    onInvalid: async (lineNumber, line, error) => {
      if (lineNumber > 0 && invalidLinesListed < LISTED_INVALID_LINES) {
        invalidLinesListed += 1;
        report(`line ${lineNumber}: ${error.message}\n`);
      }
      if (rejects) await rejects.write(JSON.stringify({ line: lineNumber, error: error.message, input: line }));
    },
    onSessionizeStart: (events) => bar?.start(events, 0, { phase: 'sessionizing' }),
    onSessionized: (events) => bar?.update(events),
  });
  bar?.stop();
  await rejects?.close();
  for (const text of invalidLines) process.stderr.write(text);

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (stats.invalid > LISTED_INVALID_LINES) {
    process.stderr.write(`… and ${stats.invalid - LISTED_INVALID_LINES} more invalid lines${options.rejects ? ` (all in ${options.rejects})` : ''}\n`);
  }
  process.stderr.write(
    `recompute: ${stats.lines} lines, ${stats.events} valid events (${stats.duplicates} duplicates), ` +
      `${stats.invalid} invalid lines skipped; ${stats.sessions} sessions of ${stats.users} users in ${seconds}s\n`,
  );
  return stats;
}

function openInput(path: string): { stream: Readable; size: number | null } {
  if (path === '-') return { stream: process.stdin, size: null };
  let fd: number;
  try {
    fd = openSync(path, 'r');
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new Error('is a directory');
    return { stream: createReadStream('', { fd, highWaterMark: 1 << 20 }), size: stat.isFile() ? stat.size : null };
  } catch (err) {
    throw new UnreadableInputError(path, err);
  }
}

function openOutput(path: string): WriteStream | Writable {
  try {
    const fd = openSync(path, 'w');
    return createWriteStream('', { fd });
  } catch (err) {
    throw new UsageError(`cannot write ${path}: ${(err as Error).message}`);
  }
}

function newBar(): SingleBar {
  return new SingleBar({
    stream: process.stderr,
    format: '{phase} [{bar}] {percentage}% | {value}/{total} | {duration_formatted}',
    hideCursor: true,
    clearOnComplete: true,
  });
}
