/**
 * What the worker says about the messages it sends to the dead-letter topic: one info line per
 * minute at most — how many, from which topics, and the most frequent reasons — instead of a line
 * per message, which a bad producer would turn into a flood. The messages themselves, with
 * their reasons in headers, are on the dead-letter topic (`sessionizer dead-letters list`), and
 * `events_invalid_total` counts them as they come.
 */
import type { Logger } from 'pino';
import { reasonOf } from '../events/reason';

export const SUMMARY_INTERVAL_MS = 60_000;
/** Reasons named in a summary line; the rest are counted as "other". */
const TOP_REASONS = 3;

export class DeadLetterSummary {
  private windowStart: number | null = null;
  private count = 0;
  private readonly byTopic = new Map<string, number>();
  private readonly byReason = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly intervalMs = SUMMARY_INTERVAL_MS,
  ) {}

  /** Counts dead letters of `topic` (their error messages); logs the last window's summary if a minute has passed. */
  note(topic: string, messages: readonly string[]): void {
    if (messages.length === 0) return;
    this.flushIfDue();
    this.windowStart ??= this.now();
    this.count += messages.length;
    this.byTopic.set(topic, (this.byTopic.get(topic) ?? 0) + messages.length);
    for (const message of messages) {
      const reason = reasonOf(message);
      this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + 1);
    }
    // Traffic may stop: the window's line must still come, within a minute. Not kept alive by it.
    this.timer ??= setInterval(() => this.flushIfDue(), Math.max(1_000, this.intervalMs / 4)).unref();
  }

  /** Logs and clears the window once it is `intervalMs` old; returns whether it logged. */
  flushIfDue(): boolean {
    if (this.windowStart === null || this.now() - this.windowStart < this.intervalMs) return false;
    this.flush();
    return true;
  }

  /** Logs what the window holds (if anything) and starts a new one. */
  flush(): void {
    if (this.windowStart !== null && this.count > 0) {
      const reasons = [...this.byReason.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      const top = reasons.slice(0, TOP_REASONS).map(([reason, count]) => ({ reason, count }));
      const other = reasons.slice(TOP_REASONS).reduce((sum, [, n]) => sum + n, 0);
      const seconds = Math.round((this.now() - this.windowStart) / 1000);
      this.log.info(
        { deadLetters: this.count, seconds, topics: Object.fromEntries(this.byTopic), reasons: top, otherReasons: other },
        `${this.count} invalid message${this.count === 1 ? '' : 's'} sent to the dead-letter topic in the last ${seconds} s; ` +
          `most often: ${top.map((r) => `${r.reason} (${r.count})`).join(', ')}${other > 0 ? `, ${other} for other reasons` : ''}`,
      );
    }
    this.windowStart = null;
    this.count = 0;
    this.byTopic.clear();
    this.byReason.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** One summary per logger, so every partition processor of a worker adds to the same line. */
const shared = new WeakMap<Logger, DeadLetterSummary>();
export function deadLetterSummaryFor(log: Logger, now?: () => number): DeadLetterSummary {
  let summary = shared.get(log);
  if (!summary) {
    summary = new DeadLetterSummary(log, now);
    shared.set(log, summary);
  }
  return summary;
}
