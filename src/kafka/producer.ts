/**
 * Every Kafka producer of ours, and the one way we send a record with it.
 *
 * kafkajs (2.2.4) can lose messages inside its own produce retry. One `send` remembers, across its
 * retries, which brokers have answered, and a retry goes only to brokers that have not. When a
 * broker dies mid-send, the partitions it led move to other brokers; if the new leader had already
 * answered for its own partitions, the retry sends it nothing for the moved ones, and `send`
 * resolves as if every message had been written (kafkajs issue #1303, unfixed; the open pull
 * request #1798 describes the same cause). We saw it as acknowledged events that no replica's log
 * held after a broker was killed.
 *
 * So kafkajs makes exactly one attempt per `send` (`retries: 0`, and `send` fails as soon as one
 * broker does), and we retry the whole record with a fresh `send`. Partitions already written by a
 * failed attempt are written again: delivery is at least once, and the worker counts each event_id
 * once. kafkajs still refreshes its metadata when an attempt fails, so the next attempt goes to the
 * new leaders.
 */
import { backOff } from 'exponential-backoff';
import { Partitioners, type Kafka, type Producer, type ProducerConfig, type ProducerRecord, type RecordMetadata } from 'kafkajs';
import { isTransient } from '../worker/retry';

/** The options we let callers choose; the partitioner and the retry policy are ours. */
export type ProducerOptions = Pick<ProducerConfig, 'allowAutoTopicCreation' | 'maxInFlightRequests' | 'metadataMaxAge'>;

/**
 * A producer keyed the Java way (murmur2, as every client of ours and Kafka's own tools place a
 * key), not idempotent, one attempt per send. Send with `sendRecord`, never `producer.send` alone:
 * a single attempt fails on any broker hiccup.
 */
export function createProducer(kafka: Kafka, options: ProducerOptions = {}): Producer {
  return kafka.producer({
    allowAutoTopicCreation: false,
    ...options,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: 0 },
  });
}

export interface ResendPolicy {
  /** Attempts in all, at most (the first one included). */
  attempts: number;
  /** Pause before the first retry; doubled after each, up to `maxPauseMs`. */
  firstPauseMs: number;
  maxPauseMs: number;
  /** Called before each retry with the error of the attempt that failed; may throw to stop. */
  beforeRetry?: (err: unknown, attempt: number) => void | Promise<void>;
}

/** What a CLI command (produce, replay) does: a leader election or a broker restart takes seconds, so keep trying for about a minute. */
export const COMMAND_RESEND: ResendPolicy = { attempts: 20, firstPauseMs: 250, maxPauseMs: 4_000 };

/**
 * Sends the whole record, again from the start after any failed attempt, until every partition's
 * messages were acknowledged or `policy.attempts` attempts failed (the last error is thrown). An
 * error no retry can fix (a message too large, a topic one may not write) is thrown at once.
 */
export async function sendRecord(producer: () => Producer | Promise<Producer>, record: ProducerRecord, policy: ResendPolicy): Promise<RecordMetadata[]> {
  return backOff(async () => (await producer()).send(record), {
    numOfAttempts: policy.attempts,
    startingDelay: policy.firstPauseMs,
    maxDelay: policy.maxPauseMs,
    jitter: 'full',
    retry: async (err, attempt) => {
      if (!isTransient(err)) return false;
      await policy.beforeRetry?.(err, attempt);
      return true;
    },
  });
}
