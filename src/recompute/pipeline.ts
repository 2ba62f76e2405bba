/**
 * The steps of recalculation, shared by the in-process path and the worker threads so the two
 * cannot differ: parse a line, run one user key's sorted events through the engine, and — for
 * the threaded path — hash events into bucket files by user key, sessionize a bucket, and merge
 * the buckets' outputs back into one stream ordered by `(site, user_key, started_at)`. A key is a
 * visitor key (site and user key, src/events/visitor-key.ts), ordered by `compareVisitorKeys`.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { applyEvent, newKeyState, reconcile, type EngineConfig } from '../engine/engine';
import { toSessionRecord } from '../engine/session-row';
import { InvalidEventError } from '../errors';
import { parseSessionEvent } from '../events/parse-event';
import { parseSegmentEvent } from '../events/segment';
import type { SessionEvent } from '../events/session-event';
import { describeInvalidUtf8, isUtf8 } from '../events/utf8';
import { compareVisitorKeys, isDefaultSiteKey } from '../events/visitor-key';
import { NotUtf8Line, type Line } from '../io/line-reader';
import { identityLineOf, LatestLink } from '../people/identity-link';
import { compareEvents, compareSameUser, decodeEvent, encodeEvent } from './event-order';
import { ExternalSorter, mergeSorted, readLinesSync } from './external-sort';

/** One input line (newline and a trailing CR removed): null when blank, else the event or why not. */
export function parseLine(line: Line): SessionEvent | InvalidEventError | null {
  if (line instanceof NotUtf8Line) return new InvalidEventError('', line.reason);
  if (line.trim() === '') return null; // blank lines separate nothing in NDJSON; not an error
  return parseSessionEvent(line);
}

/** The text of a line for reports (a line that is not UTF-8 with U+FFFD for its bad bytes). */
export function lineText(line: Line): string {
  return line instanceof NotUtf8Line ? line.lossyText : line;
}

export type LineParser = typeof parseLine;

/** What the input lines are: events of our own format (the default), or Segment Spec messages. */
export interface InputFormat {
  format?: 'events' | 'segment';
  /** For Segment input: names of `track` events that are key events. */
  keyEvents?: readonly string[];
}

/** The line parser of an input format: `parseLine`, or one through the Segment mapping. */
export function lineParser(input: InputFormat = {}): LineParser {
  if (input.format !== 'segment') return parseLine;
  const options = { keyEvents: new Set(input.keyEvents ?? []) };
  return (line) => {
    if (line instanceof NotUtf8Line) return new InvalidEventError('', line.reason);
    if (line.trim() === '') return null;
    const parsed = parseSegmentEvent(line, options);
    return parsed.ok ? parsed.event : parsed.error;
  };
}

export interface SessionCounters {
  duplicates: number;
  sessions: number;
  users: number;
  /** Events run through the engine (duplicates included). */
  processed: number;
}

export function newCounters(): SessionCounters {
  return { duplicates: 0, sessions: 0, users: 0, processed: 0 };
}

/**
 * Runs one user key's events, in `compareEvents` order, through the engine with all data at
 * hand (unlimited lateness), and returns its sessions as output lines, in order of start.
 * `links`, when given, is offered every event: the same single pass finds the key's latest
 * identity link (an event's link belongs to its anonymous id, which is its user key).
 */
export function sessionizeUser(
  userKey: string,
  events: Iterable<SessionEvent>,
  config: EngineConfig,
  counters: SessionCounters,
  links?: LatestLink,
): string[] {
  const state = newKeyState(userKey);
  for (const event of events) {
    links?.offer(event);
    if (applyEvent(state, event, config, event.ts) === 'duplicate') counters.duplicates += 1;
    counters.processed += 1;
  }
  const lines: string[] = [];
  for (const change of reconcile(state, config, Infinity)) {
    if (change.write) lines.push(JSON.stringify(toSessionRecord(change.write)));
  }
  counters.sessions += lines.length;
  counters.users += 1;
  return lines;
}

/**
 * Splits an ordered event stream into runs of one user key. Each run must be consumed before
 * the next is requested (it reads from the same underlying iterator).
 */
export function* groupByUserKey(sorted: Iterator<SessionEvent>): Generator<{ userKey: string; events: Generator<SessionEvent> }> {
  let head = sorted.next();
  while (!head.done) {
    const userKey = head.value.userKey;
    const run = function* (): Generator<SessionEvent> {
      while (!head.done && head.value.userKey === userKey) {
        yield head.value;
        head = sorted.next();
      }
    };
    const events = run();
    yield { userKey, events };
    // Drain whatever the consumer left, so the next run starts at the next key.
    for (const _ of events) void _;
  }
}

// ---------------------------------------------------------------------------------------------
// Threaded path, pass 1: lines -> events -> bucket files
// ---------------------------------------------------------------------------------------------

/** An invalid line of a batch; `index` is 1-based within the batch. */
export interface InvalidLine {
  index: number;
  line: string;
  field: string;
  reason: string;
}

export interface BatchResult {
  lines: number;
  events: number;
  invalid: InvalidLine[];
}

/**
 * Parses a batch of whole lines, as UTF-8 bytes, as `readLines` splits them (on `\n`, a trailing
 * CR dropped, a last line without newline counted when not empty; a line that is not UTF-8 is
 * invalid), and hands each valid event to `onEvent`.
 *
 * Each line is decoded on its own, after one check that the whole batch is UTF-8 (a UTF-8
 * sequence never spans a newline, so the lines are the text `readLines` gives). Decoding the
 * batch at once would make one two-byte string of it whenever any line holds a non-ASCII
 * character, and V8 decodes such text several times slower than ASCII; line by line, only the
 * lines that hold one become two-byte strings, and `JSON.parse` reads the others faster too.
 */
export function parseBatch(bytes: Buffer, onEvent: (event: SessionEvent, line: string) => void, parse: LineParser = parseLine): BatchResult {
  const result: BatchResult = { lines: 0, events: 0, invalid: [] };
  // Lines are checked one by one only in a batch that is not all UTF-8, so that only the lines
  // at fault are reported, by their number.
  const utf8 = isUtf8(bytes);
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(10, start);
    const next = end < 0 ? bytes.length : end + 1;
    if (end < 0) end = bytes.length;
    if (end > start && bytes[end - 1] === 13) end -= 1;
    result.lines += 1;
    if (utf8 || isUtf8(bytes.subarray(start, end))) {
      parseOne(bytes.toString('utf8', start, end), onEvent, result, parse);
    } else {
      const line = bytes.subarray(start, end);
      result.invalid.push({ index: result.lines, line: line.toString('utf8'), field: '', reason: describeInvalidUtf8(line) });
    }
    start = next;
  }
  return result;
}

function parseOne(line: string, onEvent: (event: SessionEvent, line: string) => void, result: BatchResult, parse: LineParser): void {
  const parsed = parse(line);
  if (parsed === null) return;
  if (parsed instanceof InvalidEventError) {
    result.invalid.push({ index: result.lines, line, field: parsed.field, reason: parsed.reason });
  } else {
    result.events += 1;
    onEvent(parsed, line);
  }
}

/** Bucket of a user key: FNV-1a over its UTF-16 code units. */
export function bucketOf(userKey: string, buckets: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < userKey.length; i++) {
    h ^= userKey.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % buckets;
}

export function bucketFile(dir: string, bucket: number, writer: number): string {
  return join(dir, `bucket-${bucket}.w${writer}`);
}

/**
 * Appends encoded events to one writer's bucket files through a byte buffer per bucket (so an
 * event's text dies young instead of piling up as a rope until the next flush).
 */
export class BucketWriter {
  private readonly buffers: Buffer[];
  private readonly used: number[];
  private readonly fds: Array<number | null>;
  readonly counts: number[];

  constructor(
    private readonly dir: string,
    private readonly buckets: number,
    private readonly writer: number,
    private readonly bufferBytes: number,
  ) {
    this.buffers = [];
    for (let b = 0; b < buckets; b++) this.buffers.push(Buffer.allocUnsafeSlow(bufferBytes));
    this.used = new Array<number>(buckets).fill(0);
    this.fds = new Array<number | null>(buckets).fill(null);
    this.counts = new Array<number>(buckets).fill(0);
  }

  /** Adds an event; `line`, the JSON it was parsed from, spares the codec a check (see encodeEvent). */
  add(event: SessionEvent, line?: string): void {
    const b = bucketOf(event.userKey, this.buckets);
    const encoded = encodeEvent(event, line === undefined || line.indexOf('\\') >= 0);
    this.counts[b] = (this.counts[b] as number) + 1;
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    const worst = encoded.length * 3 + 1;
    let at = this.used[b] as number;
    if (at + worst > this.bufferBytes) {
      this.flush(b);
      at = 0;
      if (worst > this.bufferBytes) {
        writeSync(this.fd(b), encoded + '\n');
        return;
      }
    }
    const buffer = this.buffers[b] as Buffer;
    at += buffer.write(encoded, at, 'utf8');
    buffer[at] = 10;
    this.used[b] = at + 1;
  }

  /** Writes what is buffered and closes the files; returns how many files were written. */
  close(): number {
    let files = 0;
    for (let b = 0; b < this.buckets; b++) {
      this.flush(b);
      const fd = this.fds[b];
      if (fd !== null && fd !== undefined) {
        closeSync(fd);
        files += 1;
      }
      this.fds[b] = null;
    }
    this.buffers.length = 0;
    return files;
  }

  private fd(b: number): number {
    let fd = this.fds[b];
    if (fd === null || fd === undefined) {
      fd = openSync(bucketFile(this.dir, b, this.writer), 'w');
      this.fds[b] = fd;
    }
    return fd;
  }

  private flush(b: number): void {
    const used = this.used[b] as number;
    if (used === 0) return;
    writeSync(this.fd(b), this.buffers[b] as Buffer, 0, used);
    this.used[b] = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Threaded path, pass 2: one bucket -> its sessions, ordered by (site, user_key, started_at)
// ---------------------------------------------------------------------------------------------

export interface BucketJob {
  /** The bucket's files, one per pass-1 writer that had events for it. */
  files: string[];
  events: number;
  /** Where the bucket's sessions go, in blocks: `<n> <user key as JSON>` then n session lines. */
  output: string;
  /** Above this many events the bucket is sorted on disk (`ExternalSorter`) instead. */
  maxInMemory: number;
  spillDir: string;
  timeoutMs: number;
  /** Where the bucket's identity map goes, in the same blocks (one line per linked key); none when absent. */
  identities?: string;
}

export interface BucketResult extends SessionCounters {
  spilledRuns: number;
  /** Identity map entries written. */
  links: number;
}

export function sessionizeBucket(job: BucketJob, sampleHeap: () => void = () => undefined): BucketResult {
  const config: EngineConfig = { timeoutMs: job.timeoutMs, latenessMs: Infinity };
  const counters = newCounters();
  const out = new BlockWriter(job.output);
  const identities = job.identities === undefined ? null : new IdentityBlocks(job.identities);
  const links = identities ? new LatestLink() : undefined;
  let spilledRuns = 0;
  try {
    if (job.events <= job.maxInMemory) {
      // The bucket's bytes; group its lines by user key as offsets, and decode a key's events
      // only when it is sessionized, so they die young instead of filling the old space. Lines
      // are decoded one by one, as in pass 1 (see parseBatch): decoding the whole bucket would
      // make one two-byte string of it if any line held a non-ASCII character.
      const bytes = job.files.length === 1 ? readFileSync(job.files[0] as string) : Buffer.concat(job.files.map((file) => readFileSync(file)));
      const groups = new Map<string, number[]>();
      let start = 0;
      while (start < bytes.length) {
        let end = bytes.indexOf(10, start);
        if (end < 0) end = bytes.length;
        const userKey = userKeyOfLine(bytes, start, end);
        const group = groups.get(userKey);
        if (group) group.push(start, end);
        else groups.set(userKey, [start, end]);
        start = end + 1;
      }
      sampleHeap();
      // The order of compareEvents: by site, then user key. Keys of the site default alone (the
      // common case) are in that order by the default sort (UTF-16 code units, as `<`), which
      // is cheaper than calling a comparator.
      const keys = [...groups.keys()];
      if (keys.every(isDefaultSiteKey)) keys.sort();
      else keys.sort(compareVisitorKeys);
      const events: SessionEvent[] = [];
      for (const key of keys) {
        const offsets = groups.get(key) as number[];
        events.length = 0;
        for (let i = 0; i < offsets.length; i += 2) events.push(decodeEvent(bytes.toString('utf8', offsets[i], offsets[i + 1])));
        if (events.length > 1) events.sort(compareSameUser);
        out.block(key, sessionizeUser(key, events, config, counters, links));
        identities?.add(key, links as LatestLink);
      }
    } else {
      const sorter = new ExternalSorter<SessionEvent>({
        compare: compareEvents,
        encode: encodeEvent,
        decode: decodeEvent,
        maxBuffered: job.maxInMemory,
        spillDir: job.spillDir,
      });
      try {
        for (const file of job.files) for (const line of readLinesSync(file, 1 << 18)) sorter.add(decodeEvent(line));
        spilledRuns = sorter.spilledRuns;
        sampleHeap();
        for (const { userKey, events } of groupByUserKey(sorter.sorted())) {
          out.block(userKey, sessionizeUser(userKey, events, config, counters, links));
          identities?.add(userKey, links as LatestLink);
        }
      } finally {
        sorter.dispose();
      }
    }
    sampleHeap();
  } finally {
    try {
      out.close();
    } finally {
      identities?.close();
    }
  }
  return { ...counters, spilledRuns, links: identities?.written ?? 0 };
}

/** A bucket's identity map: one block per linked user key, so pass 3 merges it like the sessions. */
class IdentityBlocks {
  written = 0;
  private readonly out: BlockWriter;

  constructor(path: string) {
    this.out = new BlockWriter(path);
  }

  add(userKey: string, links: LatestLink): void {
    const link = links.take();
    if (link === null) return;
    this.out.block(userKey, [identityLineOf(link)]);
    this.written += 1;
  }

  close(): void {
    this.out.close();
  }
}

/** The user key of an encoded event line (its first field). */
function userKeyOfLine(bytes: Buffer, start: number, end: number): string {
  if (bytes[start] === 0x1b) return decodeEvent(bytes.toString('utf8', start, end)).userKey;
  return bytes.toString('utf8', start, bytes.indexOf(0x1f, start));
}

/**
 * Buffered synchronous writer of a bucket's output: per user key, a header line
 * `<bytes> <user key as JSON>`, then that many bytes of session lines (newline-terminated).
 */
class BlockWriter {
  private chunk = '';
  private readonly fd: number;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  block(userKey: string, lines: string[]): void {
    const body = lines.join('\n') + '\n';
    this.chunk += `${Buffer.byteLength(body, 'utf8')} ${JSON.stringify(userKey)}\n${body}`;
    if (this.chunk.length >= 1 << 20) this.flush();
  }

  close(): void {
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
    }
  }

  private flush(): void {
    if (this.chunk) writeSync(this.fd, this.chunk);
    this.chunk = '';
  }
}

// ---------------------------------------------------------------------------------------------
// Threaded path, pass 3: merge the buckets' outputs
// ---------------------------------------------------------------------------------------------

/** Reads a file sequentially with a fixed-size buffer. */
class ByteReader {
  private readonly buffer: Buffer;
  private start = 0;
  private end = 0;
  private closed = false;
  private readonly fd: number;

  constructor(path: string, bufferBytes: number) {
    this.fd = openSync(path, 'r');
    this.buffer = Buffer.allocUnsafe(bufferBytes);
  }

  /** The next line without its newline (as text), null at the end of the file. */
  line(): string | null {
    for (;;) {
      const newline = this.buffer.indexOf(10, this.start);
      if (newline >= 0 && newline < this.end) {
        const text = this.buffer.toString('utf8', this.start, newline);
        this.start = newline + 1;
        return text;
      }
      if (!this.fill()) {
        if (this.start < this.end) throw new Error('bucket output ends without a newline');
        return null;
      }
    }
  }

  /** The next `bytes` bytes, in pieces (views of the buffer, valid until the next piece). */
  *bytes(bytes: number): Generator<Buffer> {
    let left = bytes;
    while (left > 0) {
      if (this.start === this.end && !this.fill()) throw new Error('bucket output is truncated');
      const n = Math.min(left, this.end - this.start);
      const piece = this.buffer.subarray(this.start, this.start + n);
      this.start += n;
      left -= n;
      yield piece;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  /** Moves what is unread to the front and reads more; false at the end of the file. */
  private fill(): boolean {
    if (this.start > 0) {
      this.buffer.copy(this.buffer, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end === this.buffer.length) throw new Error('bucket output line longer than the read buffer');
    const n = readSync(this.fd, this.buffer, this.end, this.buffer.length - this.end, null);
    this.end += n;
    return n > 0;
  }
}

interface BlockSource {
  reader: ByteReader;
  userKey: string;
  bytes: number;
}

function nextBlock(source: BlockSource): boolean {
  const header = source.reader.line();
  if (header === null) return false;
  const space = header.indexOf(' ');
  source.bytes = Number(header.slice(0, space));
  source.userKey = JSON.parse(header.slice(space + 1)) as string;
  return true;
}

/**
 * The session lines of all bucket outputs in user key order, as pieces of bytes (each valid
 * until the next is requested). Each key is in exactly one bucket, and each bucket is in key
 * order, so this is the order of the in-process path.
 */
export function* mergeBucketOutputs(paths: string[]): Generator<Buffer> {
  const readers: ByteReader[] = [];
  try {
    const blocks: Array<Iterator<BlockSource>> = [];
    for (const path of paths) {
      const source: BlockSource = { reader: new ByteReader(path, 1 << 20), userKey: '', bytes: 0 };
      readers.push(source.reader);
      if (nextBlock(source)) blocks.push(blocksOf(source));
    }
    const ordered = mergeSorted(blocks, (a, b) => compareVisitorKeys(a.userKey, b.userKey));
    for (const source of ordered) yield* source.reader.bytes(source.bytes);
  } finally {
    for (const reader of readers) reader.close();
  }
}

/** Yields the source once per block, positioned at the block's bytes (read them before the next). */
function* blocksOf(source: BlockSource): Generator<BlockSource> {
  do yield source;
  while (nextBlock(source));
}
