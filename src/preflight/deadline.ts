/**
 * Trying to reach a service until a deadline: each attempt is bounded by what is left, a failure
 * a retry cannot fix (wrong credentials) stops at once, and the last error is what we report.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${formatSeconds(ms)}`);
  }
}

/** 15 s, 2.5 s, 0.3 s: whole seconds when it is a whole number, else one decimal (never "0 s"). */
function formatSeconds(ms: number): string {
  const seconds = Math.max(0.1, Math.round(ms / 100) / 10);
  return `${seconds} s`;
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

/** Nothing listens at the address (the host answered with a reset): retrying for long will not change that. */
export function isConnectionRefused(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  const text = err instanceof Error ? err.message : String(err);
  return /ECONNREFUSED/.test(`${typeof code === 'string' ? code : ''} ${text}`);
}

/**
 * How long refused connections are retried before the command gives up: long enough for a
 * second or third try (a bootstrap list with one dead broker among live ones, a server that is
 * binding its port this very moment), short enough that a wrong address is reported within 2 s
 * and not after CONNECT_TIMEOUT_SECONDS.
 */
export const REFUSED_GRACE_MS = 1_000;

/** An attempt cut off with less time than this says little: an earlier real error is kept instead. */
const MEANINGFUL_ATTEMPT_MS = 1_000;

export interface RetryUntilOptions {
  /** Epoch ms after which no new attempt starts. */
  deadline: number;
  /** True for errors retrying cannot fix (bad credentials): they end the loop at once. */
  isFatal?: (err: unknown) => boolean;
  /** Refused connections end the loop once they have been retried this long. Default `REFUSED_GRACE_MS`. */
  refusedGraceMs?: number;
  /** Pause between attempts. Default 500 ms. */
  pauseMs?: number;
  now?: () => number;
}

/**
 * Runs `attempt(msLeft)` until it succeeds, a fatal error occurs, refused connections outlast
 * their grace, or the deadline passes; then throws the most telling error: the last one, except
 * that an attempt cut short by the deadline does not hide the real error of an attempt before
 * it. A timeout is reported with the whole time waited ("no answer within 15 s"), not the
 * remnant the last attempt had.
 */
export async function retryUntil<T>(attempt: (msLeft: number) => Promise<T>, options: RetryUntilOptions): Promise<T> {
  const now = options.now ?? Date.now;
  const pause = options.pauseMs ?? 500;
  const refusedGrace = options.refusedGraceMs ?? REFUSED_GRACE_MS;
  const started = now();
  let last: unknown;
  const failure = (): unknown => (last === undefined || last instanceof AttemptTimeout ? new AttemptTimeout(now() - started) : last);
  for (;;) {
    const left = options.deadline - now();
    if (left <= 0) throw failure();
    try {
      return await within(left, attempt(left));
    } catch (err) {
      const cutShort = isTimeout(err) && left < MEANINGFUL_ATTEMPT_MS;
      if (!(cutShort && last !== undefined && !isTimeout(last))) last = err;
      if (options.isFatal?.(err)) throw err;
      if (isConnectionRefused(err) && now() - started >= refusedGrace) throw err;
    }
    const after = options.deadline - now();
    if (after <= 0) throw failure();
    await sleep(Math.min(pause, after));
  }
}

function isTimeout(err: unknown): boolean {
  return err instanceof AttemptTimeout || /ETIMEDOUT|timed? ?out/i.test(`${String((err as { code?: unknown } | null)?.code ?? '')} ${err instanceof Error ? err.message : String(err)}`);
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
