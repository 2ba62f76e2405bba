/**
 * Retries of transient failures (a Redis or ClickHouse restart, a network blip) with exponential
 * backoff, for as long as the caller still wants the result. This is our back-pressure: while a
 * dependency is down the batch waits, nothing is committed, and consumption resumes by itself.
 * Errors that retrying cannot fix (a lost partition, bad schema, corrupt state) go straight up.
 */
import { backOff } from 'exponential-backoff';
import { SessionizerError } from '../errors';

/** ClickHouse error codes that no retry fixes: missing table or column, unparsable rows, auth. */
const FATAL_CLICKHOUSE_CODES = new Set(['16', '27', '36', '47', '53', '60', '62', '81', '117', '192', '516']);

export function isTransient(err: unknown): boolean {
  if (err instanceof SessionizerError) return err.retriable;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && FATAL_CLICKHOUSE_CODES.has(code)) return false;
  return true;
}

export interface RetryHooks {
  /** Called before each retry; may throw to abort (e.g. kafkajs heartbeat during a rebalance). */
  beforeRetry?: (err: unknown, attempt: number) => void | Promise<void>;
  /** Retrying stops (the last error is thrown) once this returns false. */
  shouldContinue?: () => boolean;
}

export async function withRetry<T>(operation: string, fn: () => Promise<T>, hooks: RetryHooks = {}): Promise<T> {
  let abort: unknown = null;
  try {
    return await backOff(fn, {
      numOfAttempts: Number.MAX_SAFE_INTEGER,
      startingDelay: 100,
      maxDelay: 5_000,
      jitter: 'full',
      retry: async (err, attempt) => {
        if (!isTransient(err) || (hooks.shouldContinue && !hooks.shouldContinue())) return false;
        try {
          await hooks.beforeRetry?.(err, attempt);
        } catch (hookError) {
          abort = hookError;
          return false;
        }
        return true;
      },
    });
  } catch (err) {
    if (abort) throw abort;
    throw err instanceof Error ? err : new Error(`${operation} failed: ${String(err)}`);
  }
}
