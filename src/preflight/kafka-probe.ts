/**
 * Is Kafka there, and are our topics? Connects an admin client to the bootstrap brokers (no
 * retries of its own: we retry until the connect deadline) and lists the topics. Its client log
 * goes to debug: the one-line error we throw is what the operator sees.
 */
import { Kafka, logLevel as KafkaLogLevel, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { ServiceUnavailableError, TopicMissingError } from '../errors';
import { retryUntil, shortReason } from './deadline';

export interface KafkaProbeOptions {
  /** Topics that must exist (unless `createTopics` is set in the config). */
  topics?: readonly string[];
  timeoutMs: number;
  log: Logger;
}

function isAuthError(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name ?? '';
  const text = err instanceof Error ? err.message : '';
  return /SASLAuthentication/.test(name) || /SASL .*authentication failed|Authentication failed/i.test(text);
}

/** Resolves with the topic names on the cluster; throws `ServiceUnavailableError` or `TopicMissingError`. */
export async function probeKafka(config: Config['kafka'], options: KafkaProbeOptions): Promise<string[]> {
  const address = config.brokers.join(',');
  const deadline = Date.now() + options.timeoutMs;
  const log = options.log;
  let topics: string[];
  try {
    topics = await retryUntil(
      async (left) => {
        const kafka = new Kafka({
          clientId: `${config.clientId}-probe`,
          brokers: config.brokers,
          ssl: config.ssl,
          sasl: config.sasl as SASLOptions | undefined,
          connectionTimeout: Math.min(5_000, left),
          requestTimeout: Math.min(10_000, left),
          retry: { retries: 0 },
          logLevel: KafkaLogLevel.WARN,
          logCreator: () => (entry) => log.debug({ kafka: entry.namespace, ...entry.log }, 'kafka probe'),
        });
        const admin = kafka.admin();
        try {
          await admin.connect();
          return await admin.listTopics();
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      },
      { deadline, isFatal: isAuthError },
    );
  } catch (err) {
    log.debug({ err, service: 'kafka', brokers: address }, 'kafka unreachable');
    const fix = isAuthError(err)
      ? 'Check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD'
      : 'Check KAFKA_BROKERS (and KAFKA_SSL) and that a broker listens there';
    throw new ServiceUnavailableError('Kafka', address, isAuthError(err) ? 'authentication failed' : shortReason(err), fix, err);
  }
  if (!config.createTopics && options.topics) {
    const existing = new Set(topics);
    const missing = options.topics.filter((t) => !existing.has(t));
    if (missing.length > 0) throw new TopicMissingError(missing, address, config.topicPartitions);
  }
  return topics;
}
