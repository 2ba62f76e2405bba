/**
 * Offline recalculation (`sessionizer recompute`): events NDJSON in, sessions NDJSON out.
 *
 * It has all the data, so nothing is late: each user key's events are sorted by
 * `(timestamp, event_id)` and fed in order through the same engine the streaming worker runs,
 * with an unlimited allowed lateness. Sessions come out ordered by `(user_key, started_at)`, and
 * the output is independent of the order of the input lines.
 *
 * Two paths, built from the same steps (pipeline.ts), with byte-identical output:
 *
 * - In process (small inputs, `threads: 0`, or when running from TypeScript sources, as under
 *   ts-jest, where a worker cannot load this file): events are sorted by
 *   `(user_key, timestamp, event_id)`, spilling sorted runs to disk beyond `maxBufferedEvents`.
 *
 * - Worker threads (inputs over `THREADS_MIN_BYTES`). Pass 1: this thread reads the input and
 *   cuts it into batches of whole lines; the workers parse, validate and normalise them and
 *   append the encoded events to bucket files by a hash of the user key (the number of buckets
 *   chosen from the input size so that a bucket fits in memory); invalid lines come back and are
 *   reported here, in line order. Pass 2: the workers take buckets, sort each user key's events
 *   and run the engine, writing each bucket's sessions in `(user_key, started_at)` order (a bucket
 *   with more than its share of `maxBufferedEvents` is sorted on disk instead). Pass 3: this
 *   thread merges the buckets' outputs by user key. All files live in one temporary folder,
 *   removed on success, on error and on SIGINT/SIGTERM.
 *
 * With `identities`, both paths also write the identity map from the same pass (see
 * src/people/identity-link.ts): a link's anonymous id is its event's user key, so each key's
 * latest link is found while its events go through the engine, and the map comes out in user
 * key order with nothing held beyond the key at hand (threads: per bucket, merged in pass 3).
 */
import { once } from 'node:events';
import { fstatSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { EngineConfig } from '../engine/engine';
import type { SessionRecord } from '../engine/session-row';
import { InvalidEventError } from '../errors';
import type { SessionEvent } from '../events/session-event';
import { refuseBinaryInput } from '../io/binary-input';
import { readLines, type Line } from '../io/line-reader';
import { LineWriter } from '../io/line-writer';
import { compareEvents, decodeEvent, encodeEvent } from './event-order';
import { ExternalSorter } from './external-sort';
import {
  bucketFile,
  groupByUserKey,
  lineText,
  mergeBucketOutputs,
  newCounters,
  lineParser,
  sessionizeUser,
  type BatchResult,
  type BucketJob,
  type BucketResult,
  type InputFormat,
} from './pipeline';
import type { WorkerInit } from './recompute-worker';
import { makeTempDir, removeTempDir } from './temp-dirs';
import { identityLineOf, LatestLink } from '../people/identity-link';

export const DEFAULT_TIMEOUT_MS = 30 * 60_000;
/** About 100 MB of heap: recompute stays well under 300 MB whatever the input size. */
export const DEFAULT_MAX_BUFFERED_EVENTS = 200_000;
/** Inputs smaller than this are recalculated in process: starting threads would cost more. */
export const THREADS_MIN_BYTES = 16 << 20;
/** Input bytes per bucket when the input size is known: a bucket's events fit in memory easily. */
const BUCKET_INPUT_BYTES = 8 << 20;
/** Buckets when the input size is not known (stdin, a pipe). */
const UNKNOWN_SIZE_BUCKETS = 256;
/** Bytes of whole lines sent to a worker at once, and how many such batches may be in flight. */
const BATCH_BYTES = 1 << 20;
const BATCHES_IN_FLIGHT_PER_WORKER = 3;
/** Bytes written to the output at once in pass 3. */
const OUTPUT_CHUNK_BYTES = 1 << 20;

export interface RecomputeOptions {
  timeoutMs: number;
  /**
   * Events held in memory for sorting. In process: beyond it, sorted runs spill to disk. With
   * threads: each worker holds at most its share; a bucket with more is sorted on disk.
   */
  maxBufferedEvents?: number;
  spillDir?: string;
  /**
   * Worker threads; 0 for the in-process path. By default: the number of CPUs (at most 4; none
   * with one CPU, or when running from TypeScript sources), and only for inputs of at least
   * `THREADS_MIN_BYTES`. A number given here is used whatever the input size.
   */
  threads?: number;
  /** What the lines are: events of our own format (default) or Segment Spec messages. */
  input?: InputFormat;
  /** Called for each line that is not a valid event (1-based line number), in line order. */
  onInvalid?: (lineNumber: number, line: string, error: InvalidEventError) => void | Promise<void>;
  /** Input bytes consumed so far (for a progress bar). */
  onReadBytes?: (bytes: number) => void;
  /** Called when sorting is done and sessionizing starts, then as events are processed. */
  onSessionizeStart?: (events: number) => void;
  onSessionized?: (events: number) => void;
  /** Diagnostics: the peak heap of each worker thread, when threads were used (for benchmarks). */
  onWorkerHeap?: (peakHeapBytes: number[]) => void;
  /** Keep the output stream open at the end (e.g. a caller that writes more). */
  keepOutputOpen?: boolean;
  /**
   * Where the identity map goes (`--identities`): one line per linked anonymous id, sorted by
   * it, made in the same pass as the sessions. Ended when done.
   */
  identities?: Writable;
}

export interface RecomputeStats {
  lines: number;
  events: number;
  invalid: number;
  duplicates: number;
  sessions: number;
  users: number;
  /**
   * Files of events written to disk: in process, the sorted runs spilled; with threads, the
   * bucket files of pass 1 plus any runs a bucket too large for memory spilled in pass 2.
   */
  spilledRuns: number;
  /** Identity map entries written (0 without `identities`). */
  links: number;
}

const RUNNING_FROM_TS = __filename.endsWith('.ts');

/**
 * Throws `BinaryInputError` (before reading further) when the input is plainly not text:
 * compressed, UTF-16, or with NUL bytes (src/io/binary-input.ts).
 */
export async function recompute(input: Readable, output: Writable, options: RecomputeOptions): Promise<RecomputeStats> {
  const threads = options.threads ?? defaultThreads();
  const chunks = refuseBinaryInput(input);
  if (threads <= 0) return recomputeInProcess(readLines(chunks, options.onReadBytes), output, options);
  if (options.threads !== undefined) return recomputeThreaded(toBuffers(chunks, options.onReadBytes), output, options, threads, bucketCount(knownSize(input), threads));

  const size = knownSize(input);
  if (size !== null) {
    if (size < THREADS_MIN_BYTES) return recomputeInProcess(readLines(chunks, options.onReadBytes), output, options);
    return recomputeThreaded(toBuffers(chunks, options.onReadBytes), output, options, threads, bucketCount(size, threads));
  }
  // Size unknown (stdin, a pipe): read ahead until the input is large enough for threads, or ends.
  const source = chunks[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headBytes = 0;
  let ended = false;
  try {
    while (headBytes < THREADS_MIN_BYTES) {
      const next = await source.next();
      if (next.done) {
        ended = true;
        break;
      }
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      options.onReadBytes?.(chunk.length);
      head.push(chunk);
      headBytes += chunk.length;
    }
  } catch (err) {
    await source.return?.(undefined);
    throw err;
  }
  const replayed = replay(head, ended ? null : source, options.onReadBytes);
  if (ended) return recomputeInProcess(readLines(replayed), output, options);
  return recomputeThreaded(replayed, output, options, threads, UNKNOWN_SIZE_BUCKETS);
}

function bucketCount(inputBytes: number | null, threads: number): number {
  if (inputBytes === null) return UNKNOWN_SIZE_BUCKETS;
  return Math.min(4096, Math.max(4 * threads, Math.ceil(inputBytes / BUCKET_INPUT_BYTES)));
}

async function* toBuffers(input: AsyncIterable<Buffer | string>, onBytes: ((bytes: number) => void) | undefined): AsyncGenerator<Buffer> {
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    onBytes?.(buffer.length);
    yield buffer;
  }
}

function defaultThreads(): number {
  if (RUNNING_FROM_TS) return 0;
  const cpus = availableParallelism();
  return cpus < 2 ? 0 : Math.min(cpus, 4);
}

/** The size of a file input, when it is one (a stream from `createReadStream`); else null. */
function knownSize(input: Readable): number | null {
  try {
    const stream = input as Readable & { fd?: unknown; path?: unknown };
    const stat =
      typeof stream.fd === 'number' ? fstatSync(stream.fd) : typeof stream.path === 'string' && stream.path ? statSync(stream.path) : null;
    return stat?.isFile() ? stat.size : null;
  } catch {
    return null;
  }
}

async function* replay(
  head: Buffer[],
  rest: AsyncIterator<Buffer | string> | null,
  onBytes: ((bytes: number) => void) | undefined,
): AsyncGenerator<Buffer> {
  for (let i = 0; i < head.length; i++) {
    yield head[i] as Buffer;
    head[i] = EMPTY; // do not keep what was consumed
  }
  if (!rest) return;
  let done = false;
  try {
    for (let next = await rest.next(); !next.done; next = await rest.next()) {
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      onBytes?.(chunk.length);
      yield chunk;
    }
    done = true;
  } finally {
    // Stopped early (an error downstream): let the stream close, as `for await` would.
    if (!done) await rest.return?.();
  }
}
const EMPTY = Buffer.alloc(0);

// ---------------------------------------------------------------------------------------------
// In process
// ---------------------------------------------------------------------------------------------

async function recomputeInProcess(lines: AsyncIterable<Line>, output: Writable, options: RecomputeOptions): Promise<RecomputeStats> {
  const stats: RecomputeStats = { lines: 0, events: 0, invalid: 0, duplicates: 0, sessions: 0, users: 0, spilledRuns: 0, links: 0 };
  const sorter = new ExternalSorter<SessionEvent>({
    compare: compareEvents,
    encode: encodeEvent,
    decode: decodeEvent,
    maxBuffered: options.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS,
    spillDir: options.spillDir,
  });
  try {
    const parse = lineParser(options.input);
    for await (const line of lines) {
      stats.lines += 1;
      const parsed = parse(line);
      if (parsed === null) continue;
      if (parsed instanceof InvalidEventError) {
        stats.invalid += 1;
        await options.onInvalid?.(stats.lines, lineText(line), parsed);
      } else {
        sorter.add(parsed);
        stats.events += 1;
      }
    }
    stats.spilledRuns = sorter.spilledRuns;
    options.onSessionizeStart?.(stats.events);

    const writer = new LineWriter(output);
    const config: EngineConfig = { timeoutMs: options.timeoutMs, latenessMs: Infinity };
    const counters = newCounters();
    const identities = options.identities ? new LineWriter(options.identities) : null;
    const links = identities ? new LatestLink() : undefined;
    let reported = 0;
    for (const { userKey, events } of groupByUserKey(sorter.sorted())) {
      for (const line of sessionizeUser(userKey, events, config, counters, links)) await writer.write(line);
      const link = links?.take();
      if (link) {
        await identities?.write(identityLineOf(link));
        stats.links += 1;
      }
      if (counters.processed - reported >= 0x10000) {
        reported = counters.processed;
        options.onSessionized?.(reported);
      }
    }
    options.onSessionized?.(counters.processed);
    stats.duplicates = counters.duplicates;
    stats.sessions = counters.sessions;
    stats.users = counters.users;
    if (options.keepOutputOpen) await writer.flush();
    else await writer.close();
    await identities?.close();
    return stats;
  } finally {
    sorter.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Worker threads
// ---------------------------------------------------------------------------------------------

async function recomputeThreaded(
  chunks: AsyncIterable<Buffer>,
  output: Writable,
  options: RecomputeOptions,
  threads: number,
  buckets: number,
): Promise<RecomputeStats> {
  const stats: RecomputeStats = { lines: 0, events: 0, invalid: 0, duplicates: 0, sessions: 0, users: 0, spilledRuns: 0, links: 0 };
  const dir = makeTempDir('sessionizer-recompute-', options.spillDir);
  // Per-bucket write buffers (outside the heap): about 8 MB per worker in all.
  const bufferBytes = Math.max(64 << 10, Math.min(256 << 10, Math.floor((8 << 20) / buckets)));
  const pool = new ThreadPool(threads, (writer) => ({ dir, buckets, writer, bufferBytes, input: options.input }));
  try {
    // Pass 1: batches of whole lines to the workers; results handled in input order.
    const inFlight: Array<Promise<WorkerReply>> = [];
    const settleOldest = async () => {
      const result = (await inFlight.shift()) as WorkerReply & BatchResult;
      for (const bad of result.invalid) {
        stats.invalid += 1;
        await options.onInvalid?.(stats.lines + bad.index, bad.line, new InvalidEventError(bad.field, bad.reason));
      }
      stats.lines += result.lines;
      stats.events += result.events;
    };
    const send = async (bytes: Uint8Array) => {
      inFlight.push(pool.request({ type: 'parse', bytes }, [bytes.buffer as ArrayBuffer]));
      while (inFlight.length >= threads * BATCHES_IN_FLIGHT_PER_WORKER) await settleOldest();
    };
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (const chunk of chunks) {
      const newline = chunk.lastIndexOf(10);
      if (newline < 0 || pendingBytes + newline + 1 < BATCH_BYTES) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        continue;
      }
      pending.push(chunk.subarray(0, newline + 1));
      await send(concat(pending, pendingBytes + newline + 1));
      pending = newline + 1 < chunk.length ? [chunk.subarray(newline + 1)] : [];
      pendingBytes = chunk.length - newline - 1;
    }
    if (pendingBytes > 0) await send(concat(pending, pendingBytes));
    pending = [];
    while (inFlight.length > 0) await settleOldest();

    const written = await Promise.all(pool.workers.map((_, i) => pool.request({ type: 'endParse' }, [], i)));
    const maxInMemory = Math.max(1, Math.floor((options.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS) / threads));
    const jobs: BucketJob[] = [];
    for (let b = 0; b < buckets; b++) {
      const files: string[] = [];
      let events = 0;
      written.forEach((reply, writer) => {
        const count = (reply.counts as number[])[b] as number;
        if (count > 0) files.push(bucketFile(dir, b, writer));
        events += count;
      });
      if (events > 0) {
        const identities = options.identities ? join(dir, `identities-${b}`) : undefined;
        jobs.push({ files, events, output: join(dir, `sessions-${b}`), maxInMemory, spillDir: dir, timeoutMs: options.timeoutMs, identities });
      }
    }
    stats.spilledRuns = written.reduce((sum, reply) => sum + (reply.files as number), 0);
    options.onSessionizeStart?.(stats.events);

    // Pass 2: buckets to the workers, largest first, each worker taking the next when done.
    jobs.sort((a, b) => b.events - a.events);
    let processed = 0;
    let nextJob = 0;
    await Promise.all(
      pool.workers.map(async (_, worker) => {
        while (nextJob < jobs.length) {
          const job = jobs[nextJob++] as BucketJob;
          const result = (await pool.request({ type: 'bucket', job }, [], worker)) as WorkerReply & BucketResult;
          stats.duplicates += result.duplicates;
          stats.sessions += result.sessions;
          stats.users += result.users;
          stats.spilledRuns += result.spilledRuns;
          stats.links += result.links;
          processed += result.processed;
          options.onSessionized?.(processed);
        }
      }),
    );
    options.onWorkerHeap?.(pool.peakHeapBytes);
    await pool.close(true);

    // Pass 3: merge the buckets' outputs by user key, as bytes (and their identity maps).
    await writePieces(mergeBucketOutputs(jobs.map((job) => job.output)), output);
    if (options.identities) {
      await writePieces(mergeBucketOutputs(jobs.map((job) => job.identities as string)), options.identities);
      await new LineWriter(options.identities).close();
    }
    // LineWriter ends the stream (or waits for stdout's last write) as the in-process path does.
    const writer = new LineWriter(output);
    if (options.keepOutputOpen) await writer.flush();
    else await writer.close();
    return stats;
  } finally {
    await pool.close();
    removeTempDir(dir);
  }
}

/** Writes pieces of bytes (each valid until the next is requested) in chunks of `OUTPUT_CHUNK_BYTES`. */
async function writePieces(pieces: Iterable<Buffer>, output: Writable): Promise<void> {
  let chunk = Buffer.allocUnsafe(OUTPUT_CHUNK_BYTES);
  let used = 0;
  for (const piece of pieces) {
    for (let at = 0; at < piece.length; ) {
      const n = piece.copy(chunk, used, at);
      at += n;
      used += n;
      if (used === chunk.length) {
        if (!output.write(chunk)) await once(output, 'drain');
        chunk = Buffer.allocUnsafe(OUTPUT_CHUNK_BYTES);
        used = 0;
      }
    }
  }
  if (used > 0 && !output.write(chunk.subarray(0, used))) await once(output, 'drain');
}

/** Copies pieces into one buffer of its own (unpooled, not zero-filled), to transfer to a worker. */
function concat(pieces: Buffer[], bytes: number): Uint8Array {
  const out = Buffer.allocUnsafeSlow(bytes);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

type WorkerReply = Record<string, unknown> & { id: number; type: 'ok' | 'error'; peakHeapBytes: number };
type Request = { type: 'parse'; bytes: Uint8Array } | { type: 'endParse' } | { type: 'bucket'; job: BucketJob };

/** Worker threads running recompute-worker; each request goes to the least busy one. */
class ThreadPool {
  readonly workers: Worker[] = [];
  readonly peakHeapBytes: number[] = [];
  private readonly busy: number[] = [];
  private readonly waiting = new Map<number, { resolve: (reply: WorkerReply) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  private failure: Error | null = null;
  private closing: Promise<void> | null = null;

  constructor(count: number, init: (writer: number) => WorkerInit) {
    const file = join(__dirname, RUNNING_FROM_TS ? 'recompute-worker.ts' : 'recompute-worker.js');
    // From .ts sources the worker needs ts-node; else it inherits this process's Node options.
    const execArgv = RUNNING_FROM_TS ? [...process.execArgv, '--require', 'ts-node/register/transpile-only'] : undefined;
    for (let i = 0; i < count; i++) {
      const worker = new Worker(file, { workerData: init(i), execArgv });
      worker.on('message', (reply: WorkerReply) => {
        this.busy[i] = (this.busy[i] as number) - 1;
        this.peakHeapBytes[i] = Math.max(this.peakHeapBytes[i] as number, reply.peakHeapBytes);
        const waiter = this.waiting.get(reply.id);
        this.waiting.delete(reply.id);
        if (reply.type === 'error') waiter?.reject(Object.assign(new Error(String(reply.message)), { stack: String(reply.stack) }));
        else waiter?.resolve(reply);
      });
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (!this.closing) this.fail(new Error(`recompute worker exited with code ${code}`));
      });
      this.workers.push(worker);
      this.busy.push(0);
      this.peakHeapBytes.push(0);
    }
  }

  request(request: Request, transfer: ArrayBuffer[] = [], worker?: number): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    let target = worker ?? 0;
    if (worker === undefined) for (let i = 1; i < this.workers.length; i++) if ((this.busy[i] as number) < (this.busy[target] as number)) target = i;
    const id = this.nextId++;
    const promise = new Promise<WorkerReply>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    promise.catch(() => undefined); // awaited by the caller, maybe later: never unhandled
    this.busy[target] = (this.busy[target] as number) + 1;
    (this.workers[target] as Worker).postMessage({ id, ...request }, transfer);
    return promise;
  }

  /** Stops the workers: `graceful` lets idle ones end by themselves, else they are terminated. */
  close(graceful = false): Promise<void> {
    this.closing ??= Promise.all(
      this.workers.map((worker) => {
        if (!graceful) return worker.terminate();
        const exited = once(worker, 'exit');
        worker.postMessage({ type: 'close' });
        // A worker that does not end by itself within a few seconds is terminated.
        const timer = setTimeout(() => void worker.terminate(), 5_000);
        return exited.finally(() => clearTimeout(timer));
      }),
    ).then(() => undefined);
    return this.closing;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }
}

export type { SessionRecord };
