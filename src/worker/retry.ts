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

/**
 * Redis error replies that pass by themselves (a replica loading or being promoted, a cluster
 * resharding, a busy script); every other reply (a script error, WRONGTYPE, NOPERM, NOAUTH)
 * stays whatever we do. A script that reached a key whose slot is moving to another node fails
 * with "non local key": the reshard ends by itself, and every script of ours that computes keys
 * touches all of them before its first write (idleTouch in state/scripts/_idle.lua), so such a
 * failure wrote nothing and may be retried.
 */
const TRANSIENT_REDIS_REPLIES = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS|MOVED|ASK|UNBLOCKED)\b|^ERR Script attempted to access a non local key in a cluster node\b/;

/**
 * Whether retrying may help, for the errors of every client we use. Connection failures and
 * timeouts are transient; an answer that refuses the request itself is not (a message too large,
 * a missing table, a rejected password), so the batch stops instead of retrying forever.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof SessionizerError) return err.retriable;
  if (err === null || typeof err !== 'object') return true;
  const { code, name } = err as { code?: unknown; name?: unknown };
  if (typeof code === 'string' && FATAL_CLICKHOUSE_CODES.has(code)) return false;
  if (name === 'ReplyError') return TRANSIENT_REDIS_REPLIES.test(String((err as Error).message));
  if (isKafkaError(err)) return kafkaTransient(err as KafkaError);
  return true;
}

/** Errors of the Kafka client itself (kafkajs names them all KafkaJS…). */
export function isKafkaError(err: unknown): boolean {
  return typeof (err as { name?: unknown } | null)?.name === 'string' && (err as { name: string }).name.startsWith('KafkaJS');
}

interface KafkaError {
  name: string;
  retriable?: boolean;
  type?: string;
  originalError?: unknown;
  cause?: unknown;
}

/**
 * kafkajs marks a broker's answer with `retriable`; its own retries exhausted, it wraps the last
 * error (KafkaJSNumberOfRetriesExceeded, KafkaJSNonRetriableError), so the verdict is the
 * wrapped one's. A protocol error the broker calls non-retriable (MESSAGE_TOO_LARGE,
 * TOPIC_AUTHORIZATION_FAILED, INVALID_RECORD, ...) is final; losing a broker is not.
 */
function kafkaTransient(err: KafkaError): boolean {
  const inner = err.originalError ?? err.cause;
  if (inner && typeof inner === 'object' && String((inner as { name?: unknown }).name).startsWith('KafkaJS')) return kafkaTransient(inner as KafkaError);
  if (err.name === 'KafkaJSProtocolError' || err.name === 'KafkaJSNonRetriableError') return err.retriable !== false;
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
