/**
 * Offline recalculation (`sessionizer recompute`): events NDJSON in, sessions NDJSON out.
 *
 * It has all the data, so nothing is late: events are sorted by `(user_key, timestamp,
 * event_id)` — spilling sorted runs to disk beyond `maxBufferedEvents` — and each user key's
 * events are fed in order through the same engine the streaming worker runs, with an unlimited
 * allowed lateness. The output is therefore independent of the order of the input lines.
 */
import type { Readable, Writable } from 'node:stream';
import { applyEvent, newKeyState, reconcile, type EngineConfig } from '../engine/engine';
import { toSessionRecord, type SessionRecord } from '../engine/session-row';
import { InvalidEventError } from '../errors';
import { parseSessionEvent } from '../events/parse-event';
import type { SessionEvent } from '../events/session-event';
import { readLines } from '../io/line-reader';
import { LineWriter } from '../io/line-writer';
import { compareEvents, decodeEvent, encodeEvent } from './event-order';
import { ExternalSorter } from './external-sort';

export const DEFAULT_TIMEOUT_MS = 30 * 60_000;
/** About 100 MB of heap: recompute stays well under 300 MB whatever the input size. */
export const DEFAULT_MAX_BUFFERED_EVENTS = 200_000;

export interface RecomputeOptions {
  timeoutMs: number;
  maxBufferedEvents?: number;
  spillDir?: string;
  /** Called for each line that is not a valid event (1-based line number). */
  onInvalid?: (lineNumber: number, line: string, error: InvalidEventError) => void | Promise<void>;
  /** Input bytes consumed so far (for a progress bar). */
  onReadBytes?: (bytes: number) => void;
  /** Called when sorting is done and sessionizing starts, then as events are processed. */
  onSessionizeStart?: (events: number) => void;
  onSessionized?: (events: number) => void;
  /** Keep the output stream open at the end (e.g. a caller that writes more). */
  keepOutputOpen?: boolean;
}

export interface RecomputeStats {
  lines: number;
  events: number;
  invalid: number;
  duplicates: number;
  sessions: number;
  users: number;
  spilledRuns: number;
}

export async function recompute(input: Readable, output: Writable, options: RecomputeOptions): Promise<RecomputeStats> {
  const stats: RecomputeStats = { lines: 0, events: 0, invalid: 0, duplicates: 0, sessions: 0, users: 0, spilledRuns: 0 };
  const sorter = new ExternalSorter<SessionEvent>({
    compare: compareEvents,
    encode: encodeEvent,
    decode: decodeEvent,
    maxBuffered: options.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS,
    spillDir: options.spillDir,
  });
  try {
    for await (const line of readLines(input, options.onReadBytes)) {
      stats.lines += 1;
      if (line.trim() === '') continue; // blank lines separate nothing in NDJSON; not an error
      const parsed = parseSessionEvent(line);
      if (parsed instanceof InvalidEventError) {
        stats.invalid += 1;
        await options.onInvalid?.(stats.lines, line, parsed);
      } else {
        sorter.add(parsed);
        stats.events += 1;
      }
    }
    stats.spilledRuns = sorter.spilledRuns;
    options.onSessionizeStart?.(stats.events);

    const writer = new LineWriter(output);
    const config: EngineConfig = { timeoutMs: options.timeoutMs, latenessMs: Infinity };
    let processed = 0;
    for (const { userKey, events } of groupByUserKey(sorter.sorted())) {
      const state = newKeyState(userKey);
      for (const event of events) {
        if (applyEvent(state, event, config, event.ts) === 'duplicate') stats.duplicates += 1;
        processed += 1;
        if ((processed & 0xffff) === 0) options.onSessionized?.(processed);
      }
      for (const change of reconcile(state, config, Infinity)) {
        if (!change.write) continue;
        await writer.write(JSON.stringify(toSessionRecord(change.write)));
        stats.sessions += 1;
      }
      stats.users += 1;
    }
    options.onSessionized?.(processed);
    if (options.keepOutputOpen) await writer.flush();
    else await writer.close();
    return stats;
  } finally {
    sorter.dispose();
  }
}

/**
 * Splits an ordered event stream into runs of one user key. Each run must be consumed before
 * the next is requested (it reads from the same underlying iterator).
 */
function* groupByUserKey(sorted: Iterator<SessionEvent> | Iterable<SessionEvent>): Generator<{ userKey: string; events: Generator<SessionEvent> }> {
  const it = Symbol.iterator in sorted ? (sorted as Iterable<SessionEvent>)[Symbol.iterator]() : (sorted as Iterator<SessionEvent>);
  let head = it.next();
  while (!head.done) {
    const userKey = head.value.userKey;
    const run = function* (): Generator<SessionEvent> {
      while (!head.done && head.value.userKey === userKey) {
        yield head.value;
        head = it.next();
      }
    };
    const events = run();
    yield { userKey, events };
    // Drain whatever the consumer left, so the next run starts at the next key.
    for (const _ of events) void _;
  }
}

export type { SessionRecord };
