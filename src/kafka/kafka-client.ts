/**
 * Builds the kafkajs client from configuration, with its logs routed into pino. KafkaJS only
 * ships GZIP compression; producers using snappy/lz4/zstd need a codec registered, which we
 * do not bundle (see README).
 */
import { Kafka, logLevel as KafkaLogLevel, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { clientLogLevel } from './client-log';

export interface KafkaClientOptions {
  /**
   * Log the client's own errors and warnings at debug: for one-shot commands, whose failure is
   * reported as one line on stderr, so the terminal shows no client noise or stack traces (the
   * detail is in the JSON log at LOG_LEVEL=debug). The worker keeps them at their level.
   */
  quiet?: boolean;
}

export function createKafka(config: Config['kafka'], log: Logger, options: KafkaClientOptions = {}): Kafka {
  return new Kafka({
    clientId: config.clientId,
    brokers: config.brokers,
    ssl: config.ssl,
    sasl: config.sasl as SASLOptions | undefined,
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 300, retries: 8 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...extra } = entry.log;
      const fields = { kafka: entry.namespace, ...extra };
      log[options.quiet ? 'debug' : clientLogLevel(entry)](fields, message);
    },
  });
}
