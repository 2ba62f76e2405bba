/**
 * A k-way external merge sort for recalculation: items are buffered up to a limit, sorted, and
 * spilled as sorted runs of text lines to a temporary folder; reading merges the runs (and
 * whatever is still in memory) into one ordered stream. So a file larger than the heap can be
 * recalculated with memory bounded by `maxBuffered`.
 *
 * Written here rather than taken from npm: the packages we found are unmaintained, and ours
 * needs a custom comparator and a line codec, which is most of the code anyway.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { makeTempDir, removeTempDir } from './temp-dirs';

export interface ExternalSortOptions<T> {
  compare: (a: T, b: T) => number;
  /** One item as one line of text (no newline inside). */
  encode: (item: T) => string;
  decode: (line: string) => T;
  /** Items held in memory before a sorted run is written to disk. */
  maxBuffered: number;
  /** Parent folder of the spill folder; the OS temporary folder by default. */
  spillDir?: string;
}

export class ExternalSorter<T> {
  private buffer: T[] = [];
  private runs: string[] = [];
  private folder: string | null = null;

  constructor(private readonly options: ExternalSortOptions<T>) {}

  get spilledRuns(): number {
    return this.runs.length;
  }

  add(item: T): void {
    this.buffer.push(item);
    if (this.buffer.length >= this.options.maxBuffered) this.spill();
  }

  /** Yields every added item in order. Call once; `dispose` removes the spill files. */
  *sorted(): Generator<T> {
    this.buffer.sort(this.options.compare);
    if (this.runs.length === 0) {
      yield* this.buffer;
      return;
    }
    const sources: Array<Iterator<T>> = [
      this.buffer[Symbol.iterator](),
      ...this.runs.map((path) => mapIterator(readLinesSync(path, 1 << 18), this.options.decode)),
    ];
    yield* mergeSorted(sources, this.options.compare);
  }

  dispose(): void {
    this.buffer = [];
    if (this.folder) removeTempDir(this.folder);
    this.folder = null;
    this.runs = [];
  }

  private spill(): void {
    this.buffer.sort(this.options.compare);
    this.folder ??= makeTempDir('sessionizer-sort-', this.options.spillDir);
    const path = join(this.folder, `run-${this.runs.length}.ndjson`);
    const fd = openSync(path, 'w');
    try {
      let chunk = '';
      for (const item of this.buffer) {
        chunk += this.options.encode(item) + '\n';
        if (chunk.length >= 1 << 20) {
          writeSync(fd, chunk);
          chunk = '';
        }
      }
      if (chunk) writeSync(fd, chunk);
    } finally {
      closeSync(fd);
    }
    this.runs.push(path);
    this.buffer = [];
  }
}

function* mapIterator<A, B>(source: Iterator<A>, map: (a: A) => B): Generator<B> {
  for (let next = source.next(); !next.done; next = source.next()) yield map(next.value);
}

/** Reads a file of `\n`-terminated lines with a fixed-size buffer. */
export function* readLinesSync(path: string, bufferBytes = 1 << 20): Generator<string> {
  const fd = openSync(path, 'r');
  const bytes = Buffer.allocUnsafe(bufferBytes);
  const decoder = new StringDecoder('utf8');
  let pending = '';
  try {
    for (;;) {
      const n = readSync(fd, bytes, 0, bytes.length, null);
      if (n === 0) break;
      pending += decoder.write(bytes.subarray(0, n));
      let start = 0;
      let newline: number;
      while ((newline = pending.indexOf('\n', start)) >= 0) {
        yield pending.slice(start, newline);
        start = newline + 1;
      }
      pending = pending.slice(start);
    }
    pending += decoder.end();
    if (pending) yield pending;
  } finally {
    closeSync(fd);
  }
}

/** Merges sorted sources with a binary min-heap of their current heads. */
export function* mergeSorted<T>(sources: Array<Iterator<T>>, compare: (a: T, b: T) => number): Generator<T> {
  const heap: Array<{ item: T; source: Iterator<T> }> = [];
  const less = (i: number, j: number) => compare((heap[i] as { item: T }).item, (heap[j] as { item: T }).item) < 0;
  const swap = (i: number, j: number) => {
    const t = heap[i] as { item: T; source: Iterator<T> };
    heap[i] = heap[j] as { item: T; source: Iterator<T> };
    heap[j] = t;
  };
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(l, m)) m = l;
      if (r < heap.length && less(r, m)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };
  for (const source of sources) {
    const next = source.next();
    if (!next.done) heap.push({ item: next.value, source });
  }
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
  while (heap.length > 0) {
    const top = heap[0] as { item: T; source: Iterator<T> };
    yield top.item;
    const next = top.source.next();
    if (next.done) {
      const last = heap.pop() as { item: T; source: Iterator<T> };
      if (heap.length === 0) return;
      heap[0] = last;
    } else {
      top.item = next.value;
    }
    siftDown(0);
  }
}
