/**
 * Trying to reach a service until a deadline: each attempt is bounded by what is left, a failure
 * a retry cannot fix (wrong credentials) stops at once, and the last error is what we report.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${Math.round(ms / 100) / 10} s`);
  }
}

/** `work` bounded by `ms`: rejects with `AttemptTimeout` when it takes longer (work is not cancelled). */
export async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AttemptTimeout(ms)), Math.max(0, ms));
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RetryUntilOptions {
  /** Epoch ms after which no new attempt starts. */
  deadline: number;
  /** True for errors retrying cannot fix (bad credentials): they end the loop at once. */
  isFatal?: (err: unknown) => boolean;
  /** Pause between attempts. Default 500 ms. */
  pauseMs?: number;
  now?: () => number;
}

/**
 * Runs `attempt(msLeft)` until it succeeds, a fatal error occurs, or the deadline passes; then
 * throws the last error. Each attempt is raced against the time left.
 */
export async function retryUntil<T>(attempt: (msLeft: number) => Promise<T>, options: RetryUntilOptions): Promise<T> {
  const now = options.now ?? Date.now;
  const pause = options.pauseMs ?? 500;
  let last: unknown = new AttemptTimeout(0);
  for (;;) {
    const left = options.deadline - now();
    if (left <= 0) throw last;
    try {
      return await within(left, attempt(left));
    } catch (err) {
      last = err;
      if (options.isFatal?.(err)) throw err;
    }
    const after = options.deadline - now();
    if (after <= 0) throw last;
    await sleep(Math.min(pause, after));
  }
}

/** A short reason from a client error: the first line, without the library's prefixes. */
export function shortReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const text = err instanceof Error ? err.message : String(err);
  const all = `${typeof code === 'string' ? code : ''} ${text}`;
  if (/ECONNREFUSED/.test(all)) return 'connection refused';
  if (/ENOTFOUND|EAI_AGAIN/.test(all)) return 'host name not found';
  if (/ETIMEDOUT|timed? ?out|no answer within/i.test(all)) return text.startsWith('no answer within') ? text : 'connection timed out';
  if (/ECONNRESET|EPIPE|socket hang up/i.test(all)) return 'connection closed by the other side';
  if (/EHOSTUNREACH|ENETUNREACH/.test(all)) return 'host unreachable';
  const line = (text.split('\n')[0] ?? '').slice(0, 200);
  return line === '' ? 'an error without a message' : line;
}
