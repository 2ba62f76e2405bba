/**
 * The worker's Prometheus metrics (prom-client), in one registry so tests can create their own.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class WorkerMetrics {
  readonly registry: Registry;
  readonly eventsConsumed: Counter;
  readonly eventsValid: Counter;
  readonly eventsInvalid: Counter;
  readonly eventsLate: Counter;
  readonly eventsDuplicate: Counter;
  readonly sessionsOpened: Counter;
  readonly sessionsClosed: Counter;
  readonly sessionsMerged: Counter;
  readonly batchSeconds: Histogram;
  readonly batchSize: Histogram;
  readonly clickhouseFlushSeconds: Histogram;
  readonly clickhouseErrors: Counter;
  readonly redisScriptSeconds: Histogram;
  readonly consumerLag: Gauge;
  readonly openSessions: Gauge;
  readonly retries: Counter;
  readonly rebalances: Counter;
  readonly assignedPartitions: Gauge;
  readonly stateRewinds: Counter;
  readonly stateResets: Counter;
  readonly eventsDeletedUnapplied: Counter;
  readonly deadLettersReplaced: Counter;
  readonly repairedRows: Counter;
  readonly partitionStalledSeconds: Gauge;
  readonly consumerRestarts: Counter;
  readonly fetchesAhead: Counter;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registry = new Registry();
    this.registry = registry;
    if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'sessionizer_' });
    const counter = (name: string, help: string, labelNames: string[] = []) =>
      new Counter({ name: `sessionizer_${name}`, help, labelNames, registers: [registry] });
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name: `sessionizer_${name}`, help, buckets, registers: [registry] });
    this.eventsConsumed = counter('events_consumed_total', 'Kafka messages read (before validation).');
    this.eventsValid = counter('events_valid_total', 'Messages that were valid events.');
    this.eventsInvalid = counter('events_invalid_total', 'Messages sent to the dead-letter topic.', ['reason']);
    this.eventsLate = counter('events_late_total', 'Valid events later than the allowed lateness (kept in the events table for recalculation).');
    this.eventsDuplicate = counter('events_duplicate_total', 'Events whose event_id was already seen for the user key.');
    this.sessionsOpened = counter('sessions_opened_total', 'New session rows (new session ids).');
    this.sessionsClosed = counter('sessions_closed_total', 'Sessions whose end record was written.');
    this.sessionsMerged = counter('sessions_merged_total', 'Session rows retracted (merged into another session or re-identified).');
    this.batchSeconds = histogram('batch_duration_seconds', 'Time to process one partition batch.', [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    this.batchSize = histogram('batch_size_messages', 'Messages per partition batch.', [1, 10, 100, 500, 1000, 5000, 10000, 50000]);
    this.clickhouseFlushSeconds = histogram('clickhouse_flush_duration_seconds', 'Time of one ClickHouse insert.', [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5]);
    this.clickhouseErrors = counter('clickhouse_errors_total', 'Failed ClickHouse inserts (each retried).');
    this.redisScriptSeconds = histogram('redis_script_duration_seconds', 'Time of one state commit script.', [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1]);
    this.consumerLag = new Gauge({
      name: 'sessionizer_consumer_lag_messages',
      help: 'Messages behind the partition high watermark: after each batch, and each second while the partition has no batch.',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    });
    this.openSessions = new Gauge({
      name: 'sessionizer_open_sessions',
      help: 'Open sessions on the partitions this worker owns (user keys with a close deadline, updated each second).',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    });
    this.retries = counter('retries_total', 'Retried operations after a transient failure.', ['operation']);
    this.rebalances = counter('rebalances_total', 'Partition assignments received from the consumer group (each rebalance this worker took part in).');
    this.assignedPartitions = new Gauge({
      name: 'sessionizer_assigned_partitions',
      help: 'Partitions this worker owns since the last rebalance.',
      registers: [registry],
    });
    this.consumerRestarts = counter(
      'consumer_restarts_total',
      'Kafka consumers thrown away and built anew: reason="crash" (kafkajs gave up) or "stall" (a partition with messages to read got no batch for CONSUMER_STALL_SECONDS).',
      ['reason'],
    );
    this.fetchesAhead = counter(
      'consumer_fetches_ahead_total',
      'Batches fetched past the next unapplied message: dropped, and the consumer sent back to it (nothing skipped).',
    );
    this.stateRewinds = counter(
      'state_rewinds_total',
      'Claims that found the Redis state behind the committed Kafka offset (Redis lost writes) and read the partition again from the state.',
    );
    this.stateResets = counter('state_resets_total', 'Partition states dropped because they belonged to another log (STATE_LOG_MISMATCH=reset).');
    this.eventsDeletedUnapplied = counter('events_deleted_unapplied_total', 'Messages Kafka deleted (retention) before the worker applied them.');
    this.deadLettersReplaced = counter(
      'dead_letters_replaced_total',
      'Invalid messages too large for the dead-letter topic, sent as a record of where they are and why they were rejected.',
    );
    this.repairedRows = counter(
      'repaired_rows_total',
      'Session rows written to correct what lost state commits had sent to ClickHouse (after a state rewind).',
    );
    this.partitionStalledSeconds = new Gauge({
      name: 'sessionizer_partition_stalled_seconds',
      help: 'How long a partition batch has been failing and retrying (0 when it progresses); past STALL_LIMIT_SECONDS /healthz fails.',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    });
  }
}
