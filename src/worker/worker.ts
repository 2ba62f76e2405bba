/**
 * The streaming worker: a kafkajs consumer group over the event topics that hands each
 * partition's batches to its `PartitionProcessor`, closes sessions by the clock once a
 * partition is caught up, and shuts down cleanly.
 *
 * KafkaJS contract points we rely on (docs/Consuming.md): `eachBatchAutoResolve` is off, so an
 * offset counts as processed only when we resolve it after the batch is durable; `heartbeat()`
 * is called while a batch waits on a failing dependency, so the group does not evict us; an
 * unresolved batch is fetched again; `isStale()` tells a batch that lost its partition.
 */
import type { Admin, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { PartitionFencedError, StateDivergedError } from '../errors';
import type { SegmentMappingOptions } from '../events/segment';
import { ConsumerSupervisor, errorLine } from '../kafka/consumer-supervisor';
import { consumerTimings } from '../kafka/kafka-client';
import { DeadLetterPublisher } from '../kafka/dead-letter';
import { createProducer } from '../kafka/producer';
import { TopicIds } from '../kafka/topic-ids';
import { createTopics } from '../kafka/topic-spec';
import type { HealthReport, HealthSource, HealthStatus } from '../observability/http-server';
import type { WorkerMetrics } from '../observability/metrics';
import type { PartitionStateStore } from '../state/partition-state-store';
import type { IncomingMessage } from './batch-plan';
import type { LogBounds } from './log-position';
import { PartitionProcessor, type ProcessorDeps } from './partition-processor';
import { isKafkaError, isTransient, withRetry, type RetryHooks } from './retry';
import { within } from '../preflight/deadline';

export interface WorkerDeps {
  kafka: Kafka;
  log: Logger;
  metrics: WorkerMetrics;
  storeFor: (topic: string, partition: number) => PartitionStateStore;
  sink: ProcessorDeps['sink'];
  storedSessions: ProcessorDeps['storedSessions'];
  eventRow: ProcessorDeps['eventRow'];
  now?: () => number;
  /** Checks a dependency answers (Redis PING, ClickHouse ping); used by readiness. */
  pingRedis: () => Promise<boolean>;
  pingClickHouse: () => Promise<boolean>;
}

const TICK_MS = 1_000;
/** Longest a readiness probe waits for Redis or ClickHouse. */
const READINESS_PROBE_MS = 500;
/** A partition that had no batch for this long is checked against its high watermark. */
const IDLE_CHECK_MS = 2_000;
/**
 * How often a batch that waits (on ClickHouse or Redis, for minutes if need be) tells the group
 * it is alive; kafkajs sends at most one heartbeat per `heartbeatInterval` whatever we ask.
 */
const BATCH_HEARTBEAT_MS = 1_000;
/** Longest wait for one read of log offsets (a broker answers in milliseconds when it answers). */
const OFFSETS_TIMEOUT_MS = 5_000;
/**
 * A joined consumer with no heartbeat answered for this long has lost its coordinator. Normal
 * gaps are shorter: heartbeats go every 3 s, after each fetch (at most 5 s apart when idle) and
 * every second of a long batch; a rejoin inside kafkajs takes at most the rebalance timeout (10 s).
 */
const HEARTBEAT_SILENCE_MS = 15_000;
/**
 * After this long without a heartbeat answered (one heartbeat missed, with room to spare), ask a
 * broker that answers which one coordinates the group now: if the cluster has moved the group to
 * another broker (it fences a frozen one within its broker session timeout, seconds), the
 * consumer is rebuilt at once instead of at HEARTBEAT_SILENCE_MS. A slow rebalance keeps its
 * coordinator, so it is left alone.
 */
const COORDINATOR_CHECK_AFTER_MS = 5_000;
/**
 * A batch or clock tick busy this long (one takes milliseconds, a slow one under load a second or
 * so) while ClickHouse or Redis does not answer a ping is waiting on it: the watchdog then leaves
 * the consumer alone.
 */
const DEPENDENCY_WAIT_MS = 3_000;

export class Worker implements HealthSource {
  private readonly consumer: ConsumerSupervisor;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly deadLetter: DeadLetterPublisher;
  private readonly topicIds: TopicIds;
  private topicIdsFailed = false;
  private coordinatorCheck: Promise<void> | null = null;
  private offsetsAdmin: Promise<Admin> | null = null;
  private readonly processors = new Map<string, Promise<PartitionProcessor>>();
  /** Partitions of our latest assignment, as `topic:partition`. */
  private assigned = new Set<string>();
  private readonly lastBatchAt = new Map<string, number>();
  /** Each partition's log end as last read (by a tick), for the watchdog. */
  private readonly knownHighs = new Map<string, string>();
  /**
   * When the latest assignment, consumer rebuild or wait on a dependency happened: the
   * watchdog counts a partition's silence, and the consumer's, from then at the earliest.
   */
  private quietSince = 0;
  /**
   * Per assigned partition with messages to read that the consumer stopped delivering: since
   * when (cleared by its next batch). The watchdog rebuilds the consumer; health fails only
   * when that has not brought progress back within STALL_LIMIT_SECONDS.
   */
  private readonly unfedSince = new Map<string, number>();
  /** Per owned partition: its state store (open-sessions gauge) and the last offset we resolved (lag while idle). */
  private readonly stores = new Map<string, PartitionStateStore>();
  private readonly resolvedOffsets = new Map<string, bigint>();
  /** Per partition whose batch is failing and retrying: since when (cleared when a batch lands). */
  private readonly stalledSince = new Map<string, number>();
  private tickTimer: NodeJS.Timeout | null = null;
  /** The watchdog's own timer: a tick can wait seconds on Kafka or ClickHouse, the watchdog must not. */
  private watchdogTimer: NodeJS.Timeout | null = null;
  private ticking = false;
  /** Since when reading log offsets has failed on every tick (null: it works; logged once per episode). */
  private offsetsFailingSince: number | null = null;
  private running = false;
  private fatalError: unknown = null;
  private lastLoopAt = 0;
  private connectedToKafka = false;
  private readonly now: () => number;
  private readonly stopped: Promise<unknown>;
  private resolveStopped!: (reason: unknown) => void;
  /** Topics of Segment Spec messages, and how their messages are mapped to our events (with the topic's site). */
  private readonly segmentTopics: ReadonlyMap<string, SegmentMappingOptions>;
  /** Topics of our own format tied to a site (KAFKA_TOPIC_SITES), and that site. */
  private readonly topicSites: ReadonlyMap<string, string>;

  constructor(
    private readonly config: Config,
    private readonly deps: WorkerDeps,
  ) {
    this.now = deps.now ?? Date.now;
    // No receive time of our own: a message without any time of its own is rejected, as
    // `recompute --format segment` of the same message would, so both agree.
    const keyEvents = new Set(config.keyEvents);
    this.segmentTopics = new Map(config.kafka.segmentTopics.map((topic) => [topic, { keyEvents, site: config.kafka.topicSites.get(topic) }]));
    this.topicSites = new Map([...config.kafka.topicSites].filter(([topic]) => !this.segmentTopics.has(topic)));
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    this.consumer = new ConsumerSupervisor({
      kafka: deps.kafka,
      consumer: {
        groupId: config.kafka.groupId,
        ...consumerTimings,
        maxBytesPerPartition: config.kafka.batchMaxBytes,
        maxBytes: config.kafka.batchMaxBytes * 4,
        maxWaitTimeInMs: config.kafka.maxWaitMs,
        allowAutoTopicCreation: false,
      },
      topics: config.kafka.topics,
      partitionsConsumedConcurrently: 4,
      eachBatch: (payload) => this.eachBatch(payload),
      onAssignment: (assignment) => this.onAssignment(assignment),
      onRebuild: () => this.onConsumerRebuild(),
      onConnectionChange: (connected) => (this.connectedToKafka = connected),
      countRestart: (reason) => deps.metrics.consumerRestarts.inc({ reason }),
      log: deps.log,
    });
    // Dead letters: one attempt per send, each chunk retried whole by the partition's withRetry
    // (kafkajs' own produce retry can drop a partition when a broker dies: see kafka/producer.ts).
    this.producer = createProducer(deps.kafka, { allowAutoTopicCreation: config.kafka.createTopics });
    this.admin = deps.kafka.admin();
    this.deadLetter = new DeadLetterPublisher(this.producer, this.admin, config.kafka.deadLetterTopic);
    this.topicIds = new TopicIds(deps.kafka);
  }

  /** Resolves with the fatal error when the worker gives up, or null after `stop()`. */
  get done(): Promise<unknown> {
    return this.stopped;
  }

  async start(): Promise<void> {
    const { kafka } = this.config;
    await this.admin.connect();
    if (kafka.createTopics) await this.createTopics();
    await this.producer.connect();
    this.running = true;
    this.lastLoopAt = this.now();
    this.quietSince = this.now();
    await this.consumer.start();
    this.connectedToKafka = true;
    this.tickTimer = setInterval(() => void this.tick(), TICK_MS);
    this.watchdogTimer = setInterval(() => void this.watchdog(), TICK_MS);
    this.deps.log.info({ topics: kafka.topics, segmentTopics: kafka.segmentTopics, groupId: kafka.groupId }, 'worker started');
  }

  /** Finishes the batch in flight, commits, leaves the group and closes clients, within `shutdownTimeoutMs`. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`shutdown took longer than ${this.config.shutdownTimeoutMs} ms`)), this.config.shutdownTimeoutMs).unref(),
    );
    await Promise.race([
      (async () => {
        await this.consumer.stop();
        // Session rows of the last commits still on their way to ClickHouse.
        await Promise.all([...this.processors.values()].map((pending) => pending.then((processor) => processor.drain(), () => undefined)));
        await this.producer.disconnect();
        await this.admin.disconnect();
        await this.topicIds.close();
        await this.offsetsAdmin?.then((admin) => admin.disconnect()).catch(() => undefined);
      })(),
      timeout,
    ]);
    this.deps.log.info('worker stopped');
    this.resolveStopped(null);
  }

  health(): HealthReport {
    const now = this.now();
    const loopFresh = now - this.lastLoopAt < 30_000;
    // A partition that cannot progress for longer than the limit fails liveness: the
    // orchestrator restarts us, and the alert on the stalled gauge says which one.
    const stuck = [...this.stalledSince, ...this.unfedSince].filter(([, since]) => now - since > this.config.stallLimitMs).map(([key]) => key);
    const checks = { running: this.running, kafka: this.connectedToKafka, loop: loopFresh, progressing: stuck.length === 0 };
    const status: HealthStatus = !this.running || this.fatalError || stuck.length > 0 ? 'error' : checks.kafka && loopFresh ? 'ok' : 'degraded';
    return { status, checks };
  }

  async readiness(): Promise<HealthReport> {
    // Each probe is bounded: a dependency that does not answer is down for readiness, and the
    // probe must answer well within a kubelet's 1 s default timeout whatever is down.
    const [redis, clickhouse] = await this.pingDependencies();
    const { status, checks } = this.health();
    const all = { ...checks, redis, clickhouse };
    if (status === 'error') return { status, checks: all };
    return { status: redis && clickhouse && status === 'ok' ? 'ok' : 'degraded', checks: all };
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }: EachBatchPayload): Promise<void> {
    this.lastLoopAt = this.now();
    const { topic, partition } = batch;
    const key = `${topic}:${partition}`;
    this.lastBatchAt.set(key, this.now());
    this.unfedSince.delete(key);
    // The batch may wait on ClickHouse or Redis for minutes: heartbeats go on meanwhile, so the
    // group keeps us. A heartbeat that fails (a rebalance, or the group forgot us) ends the
    // batch's retries, and its error goes to kafkajs, which rejoins.
    let heartbeatError: unknown = null;
    const beat = setInterval(() => {
      heartbeat().catch((err: unknown) => {
        heartbeatError ??= err;
      });
    }, BATCH_HEARTBEAT_MS);
    const hooks: RetryHooks = {
      beforeRetry: (err, attempt) => {
        this.deps.metrics.retries.inc({ operation: 'batch' });
        if (!this.stalledSince.has(key)) this.stalledSince.set(key, this.now());
        if (attempt === 1 || attempt % 10 === 0) this.deps.log.warn({ err: errorLine(err), topic, partition, attempt }, 'transient failure, retrying');
      },
      shouldContinue: () => heartbeatError === null && isRunning() && !isStale(),
    };
    try {
      const processor = await this.processorFor(topic, partition, hooks);
      // The claim decided where to read from (the state's offset, not the group's): a batch
      // that does not start there is left unresolved and read again after the seek.
      if (this.seekFor(processor) || isStale()) return;
      if (!(await this.connectsToState(processor, batch, hooks))) return;
      await processor.handleBatch(this.incoming(topic, batch.messages), batch.highWatermark, hooks);
      if (this.seekFor(processor) || isStale()) return;
    } catch (err) {
      if (heartbeatError !== null) throw heartbeatError;
      if (err instanceof PartitionFencedError || err instanceof StateDivergedError) {
        this.processors.delete(key);
        if (err instanceof StateDivergedError) {
          this.deps.log.error({ topic, partition, err: err.message }, 'state diverged; claiming the partition again');
          return;
        }
        this.deps.log.warn(
          { topic, partition },
          'partition fenced: its state epoch in Redis changed since this worker claimed it (another worker took the partition in a rebalance, ' +
            'or a recalculation (recompute --since) changed counters of its users); this batch was not committed and will be read ' +
            'again once the partition is claimed anew, with the state reloaded: nothing is lost',
        );
        return;
      }
      // Retrying cannot fix this (missing schema, corrupt state): stop with an error so the
      // orchestrator restarts us with its back-off, instead of spinning here. Errors of the
      // consumer itself (a lost membership, a broker gone) are kafkajs' to handle: it rejoins,
      // or crashes and the supervisor builds a new consumer.
      // (isKafkaError: kafkajs rejoins, or the supervisor rebuilds the consumer; never fatal.)
      if (!isTransient(err) && !isKafkaError(err) && this.running) setImmediate(() => this.fail(err));
      throw err;
    } finally {
      clearInterval(beat);
      // A stall spans one batch that keeps retrying; however it ends, the next one starts afresh.
      this.clearStall(key);
    }
    if (heartbeatError !== null) throw heartbeatError;
    this.lastBatchAt.set(key, this.now());
    const lastOffset = batch.lastOffset();
    resolveOffset(lastOffset);
    this.resolvedOffsets.set(key, BigInt(lastOffset));
    await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: (BigInt(lastOffset) + 1n).toString() }] }] });
    await heartbeat();
  }

  /**
   * Whether the batch was fetched from where the state needs the next message (or before it,
   * whose repeats the processor skips). A fetch that starts past it would skip messages that
   * were never applied — and committing after it would make that loss permanent — so such a
   * batch is dropped and the consumer sent back. The one exception is retention: messages the
   * log no longer holds cannot be read, and are counted as deleted before they were applied.
   */
  private async connectsToState(processor: PartitionProcessor, batch: EachBatchPayload['batch'], hooks: RetryHooks): Promise<boolean> {
    const fetched = fetchedOffsetOf(batch);
    const next = processor.nextOffset;
    if (fetched === null || fetched <= next) return true;
    const { low } = await withRetry('read log offsets', () => this.logEnds(processor.topic, processor.partition), hooks);
    if (low > next) {
      processor.skipDeleted(low);
      return true;
    }
    this.deps.metrics.fetchesAhead.inc();
    this.deps.log.warn(
      { topic: processor.topic, partition: processor.partition, fetchedOffset: fetched.toString(), nextOffset: next.toString() },
      'the consumer fetched past the next unapplied message; reading again from it (nothing applied, nothing committed)',
    );
    this.consumer.seek(processor.topic, processor.partition, next.toString());
    return false;
  }

  /**
   * A batch's messages as the processor takes them: those of a Segment topic tagged as such,
   * those of a topic tied to a site tagged with it; the others (the site `default`) as they came.
   */
  private incoming(topic: string, messages: EachBatchPayload['batch']['messages']): readonly IncomingMessage[] {
    const segment = this.segmentTopics.get(topic);
    if (segment) return messages.map((m) => ({ offset: m.offset, key: m.key, value: m.value, headers: m.headers, segment }));
    const site = this.topicSites.get(topic);
    if (site) return messages.map((m) => ({ offset: m.offset, key: m.key, value: m.value, headers: m.headers, site }));
    return messages;
  }

  private processorFor(topic: string, partition: number, hooks: RetryHooks = {}): Promise<PartitionProcessor> {
    const key = `${topic}:${partition}`;
    let processor = this.processors.get(key);
    if (!processor) {
      const store = this.deps.storeFor(topic, partition);
      this.stores.set(key, store);
      const created = new PartitionProcessor(topic, partition, {
        store,
        kafkaLog: { bounds: (t, p) => this.logBounds(t, p), topicId: (t) => this.topicIdOf(t) },
        onLogMismatch: this.config.onLogMismatch,
        sink: this.deps.sink,
        storedSessions: this.deps.storedSessions,
        deadLetter: this.deadLetter,
        eventRow: this.deps.eventRow,
        engine: { timeoutMs: this.config.sessions.timeoutMs, latenessMs: this.config.sessions.latenessMs },
        closeDelayMs: this.config.sessions.closeDelayMs,
        maxClockSkewMs: this.config.sessions.maxClockSkewMs,
        now: this.now,
        metrics: this.deps.metrics,
        log: this.deps.log,
      });
      processor = created.claim(hooks).then(() => created);
      processor.catch(() => this.processors.delete(key));
      this.processors.set(key, processor);
    }
    return processor;
  }

  /** After a rebalance: forget partitions we lost, claim the ones we got (so idle ones close too). */
  private onAssignment(assignment: Record<string, number[]>): void {
    const assigned = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) assigned.add(`${topic}:${p}`);
    this.assigned = assigned;
    this.quietSince = this.now();
    this.deps.metrics.rebalances.inc();
    this.deps.metrics.assignedPartitions.set(assigned.size);
    for (const key of [...this.processors.keys()]) if (!assigned.has(key)) this.processors.delete(key);
    for (const key of [...this.stores.keys()]) if (!assigned.has(key)) this.forgetPartition(key);
    for (const key of assigned) this.reclaim(key);
    this.deps.log.info({ assignment }, 'partitions assigned');
  }

  /**
   * Claims an assigned partition now rather than at its next message: an idle partition must
   * still close its sessions, and after being fenced (by a recalculation adjusting counters,
   * say) it must reload its state. Ticks re-claim a second later, not at once, so two workers
   * that both still see a partition mid-rebalance do not fence each other in a tight loop.
   */
  private reclaim(key: string): void {
    if (!this.assigned.has(key) || !this.running) return;
    const i = key.lastIndexOf(':');
    this.processorFor(key.slice(0, i), Number(key.slice(i + 1))).then(
      (processor) => this.seekFor(processor),
      (err) => {
        // Another worker claiming the partition meanwhile (a rebalance under way) is no failure:
        // the next tick claims it again if it is still ours.
        if (err instanceof PartitionFencedError || err instanceof StateDivergedError) return;
        if (!isTransient(err) && !isKafkaError(err) && this.running) this.fail(err);
        else this.deps.log.warn({ err: errorLine(err), partition: key }, 'claim failed; retried on the next batch or tick');
      },
    );
  }

  /**
   * The supervisor threw the consumer away: every partition is claimed again once the new one
   * has its assignment, so each reads on from its state exactly as after a restart.
   */
  private onConsumerRebuild(): void {
    this.processors.clear();
    // The old assignment is kept until the new consumer's arrives: the watchdog judges on it,
    // and a new consumer that never gets to join is rebuilt in turn.
    this.quietSince = this.now();
  }

  /** Processors whose claim has finished; a claim still under way (retrying against a broker that is gone, say) holds nothing up. */
  private async readyProcessors(): Promise<Map<string, PartitionProcessor>> {
    const ready = new Map<string, PartitionProcessor>();
    for (const [key, pending] of this.processors) {
      const processor = await Promise.race([pending, NOT_READY]).catch(() => null);
      if (processor !== null && processor !== 'not ready') ready.set(key, processor);
    }
    return ready;
  }

  /**
   * Once a second, on its own timer: a tick may wait seconds on a read of the log ends (up to
   * OFFSETS_TIMEOUT_MS when a broker is frozen) or on ClickHouse, and the stall check must not
   * wait with it. It judges on the log ends read so far.
   */
  private async watchdog(): Promise<void> {
    if (!this.running) return;
    try {
      const ready = await this.readyProcessors();
      const silence = this.consumer.heartbeatSilenceMs();
      if (silence >= COORDINATOR_CHECK_AFTER_MS) this.checkCoordinator(silence);
      // Waiting on ClickHouse or Redis is ours, not Kafka's: such a batch holds kafkajs' next
      // fetches (of its broker, and of every partition once all concurrent batches wait), and
      // keeps the consumer from rejoining a rebalance until it ends. A new consumer would wait
      // on the same dependency, and the other members would rebalance again for nothing. So
      // while one waits, only a coordinator that has moved rebuilds the consumer, and the
      // watchdog's clocks start again when the wait is over.
      if (await this.waitingOnDependency(ready)) {
        this.quietSince = this.now();
        return;
      }
      if (Math.min(silence, this.now() - this.quietSince) >= HEARTBEAT_SILENCE_MS) {
        // Its coordinator froze or died under it: the group goes on without this member while
        // it still reads its old partitions, and the two owners fence each other's batches.
        void this.consumer.restart('stall', `no heartbeat answered for ${Math.round(silence / 1000)} s (the group's coordinator is frozen or gone)`);
        return;
      }
      this.watchConsumer(this.knownHighs, ready);
    } catch (err) {
      this.deps.log.warn({ err: errorLine(err) }, 'watchdog check failed');
    }
  }

  /** Whether Redis and ClickHouse each answer a ping within READINESS_PROBE_MS. */
  private pingDependencies(): Promise<[redis: boolean, clickhouse: boolean]> {
    const probe = (ping: () => Promise<boolean>) => within(READINESS_PROBE_MS, ping()).catch(() => false);
    return Promise.all([probe(this.deps.pingRedis), probe(this.deps.pingClickHouse)]);
  }

  /**
   * Whether a batch or tick has been busy for DEPENDENCY_WAIT_MS or more while Redis or ClickHouse
   * does not answer. Busy as long on a Kafka request (a claim's offset read, a dead letter's send
   * to a broker that is gone) is for the watchdog to judge like any other Kafka trouble.
   */
  private async waitingOnDependency(ready: ReadonlyMap<string, PartitionProcessor>): Promise<boolean> {
    const now = this.now();
    if (![...ready.values()].some((processor) => processor.busyForMs(now) >= DEPENDENCY_WAIT_MS)) return false;
    return (await this.pingDependencies()).includes(false);
  }

  /** One lookup at a time: while heartbeats go unanswered, is the group's coordinator still the one we joined through? */
  private checkCoordinator(silence: number): void {
    if (this.coordinatorCheck) return;
    this.coordinatorCheck = this.consumer
      .coordinators()
      .then((known) => {
        if (!known || known.now === known.joinedThrough || !this.running) return;
        void this.consumer.restart('stall', `no heartbeat answered for ${Math.round(silence / 1000)} s, and the group's coordinator moved from broker ${known.joinedThrough} to broker ${known.now}`);
      })
      .catch((err: unknown) => this.deps.log.warn({ err: errorLine(err) }, 'coordinator check failed'))
      .finally(() => {
        this.coordinatorCheck = null;
      });
  }

  /**
   * The watchdog, once a second: an assigned partition with messages to read (lag > 0) that got no
   * batch for CONSUMER_STALL_SECONDS, while none of its batches is under way, means the consumer
   * stopped fetching it (a dead broker kept in its metadata, say): build a new consumer.
   */
  private watchConsumer(highs: ReadonlyMap<string, string>, ready: ReadonlyMap<string, PartitionProcessor>): void {
    const now = this.now();
    const starved: string[] = [];
    // Kafka that cannot even tell the log's end is no reason to wait: a partition silent for
    // the whole while counts as stalled too.
    const blind = this.offsetsFailingSince !== null && now - this.offsetsFailingSince >= this.config.consumerStallMs;
    for (const key of this.assigned) {
      const high = highs.get(key);
      const processor = ready.get(key);
      if (processor?.busy || this.stalledSince.has(key)) continue;
      const behind = high !== undefined && processor !== undefined ? BigInt(high) > processor.nextOffset : blind;
      if (!behind) {
        if (high !== undefined) this.unfedSince.delete(key);
        continue;
      }
      const silentFor = now - Math.max(this.lastBatchAt.get(key) ?? 0, this.quietSince);
      if (silentFor < this.config.consumerStallMs) continue;
      if (!this.unfedSince.has(key)) this.unfedSince.set(key, now - silentFor);
      starved.push(key);
    }
    if (starved.length === 0) return;
    void this.consumer.restart('stall', `no batch for ${Math.round(this.config.consumerStallMs / 1000)} s on ${starved.length} partition(s) with messages to read (${starved.slice(0, 3).join(', ')})`);
  }

  /** Seeks the consumer where the processor needs the next batch to start; whether it did. */
  private seekFor(processor: PartitionProcessor): boolean {
    const offset = processor.takeSeek();
    if (offset === null) return false;
    this.consumer.seek(processor.topic, processor.partition, offset);
    return true;
  }

  /** The partition's log bounds and the group's committed offset, for a claim to compare with its state. */
  private async logBounds(topic: string, partition: number): Promise<LogBounds> {
    const [ends, committed] = await Promise.all([
      this.logEnds(topic, partition),
      this.offsets((admin) => admin.fetchOffsets({ groupId: this.config.kafka.groupId, topics: [topic] })),
    ]);
    const mine = committed.find((c) => c.topic === topic)?.partitions.find((p) => p.partition === partition);
    return { ...ends, committed: BigInt(mine?.offset ?? '-1') };
  }

  /** The partition's first offset still in the log and the offset its next message will get. */
  private async logEnds(topic: string, partition: number): Promise<Pick<LogBounds, 'low' | 'high'>> {
    const offsets = await this.offsets((admin) => admin.fetchTopicOffsets(topic));
    const bounds = offsets.find((o) => o.partition === partition);
    if (!bounds) throw new Error(`topic ${topic} has no partition ${partition}`);
    return { low: BigInt(bounds.low), high: BigInt(bounds.high) };
  }

  /** The topic's id now, or null when it cannot be known (then offsets and fingerprints must do). */
  private async topicIdOf(topic: string): Promise<string | null> {
    try {
      return (await this.topicIds.of([topic])).get(topic) ?? null;
    } catch (err) {
      if (!this.topicIdsFailed) this.deps.log.warn({ err }, 'cannot read topic ids from Kafka; a re-created topic is found by offsets and message fingerprints only');
      this.topicIdsFailed = true;
      return null;
    }
  }

  /**
   * Offset reads through an admin client of their own, made afresh after any failure: kafkajs
   * keeps partition leaders for up to five minutes, so after a broker died an old client would
   * keep asking it (and a claim would wait on it) long after the leaders moved.
   */
  private async offsets<T>(read: (admin: Admin) => Promise<T>): Promise<T> {
    if (!this.offsetsAdmin) {
      const admin = this.deps.kafka.admin();
      this.offsetsAdmin = admin.connect().then(() => admin);
      // Awaited below; a failed connect is also seen there.
      this.offsetsAdmin.catch(() => undefined);
    }
    const pending = this.offsetsAdmin;
    try {
      // Bounded: a kafkajs request to a broker that died mid-request can stay unanswered for
      // good, and what waits on it (a claim, the tick and its watchdog) must not.
      return await within(OFFSETS_TIMEOUT_MS, pending.then(read));
    } catch (err) {
      if (this.offsetsAdmin === pending) this.offsetsAdmin = null;
      void pending.then((admin) => admin.disconnect()).catch(() => undefined);
      throw err;
    }
  }

  private clearStall(key: string): void {
    if (this.stalledSince.delete(key)) this.deps.metrics.partitionStalledSeconds.set(partitionLabels(key), 0);
  }

  /** Once a second: partitions with no traffic learn whether they are caught up, then close what is due. */
  private async tick(): Promise<void> {
    if (this.ticking || !this.running) return;
    this.ticking = true;
    try {
      this.lastLoopAt = this.now();
      for (const key of this.assigned) if (!this.processors.has(key)) this.reclaim(key);
      const idle = [...this.processors.keys()].filter((key) => this.now() - (this.lastBatchAt.get(key) ?? 0) > IDLE_CHECK_MS);
      const topics = new Set(idle.map((key) => key.slice(0, key.lastIndexOf(':'))));
      const highs = new Map<string, string>();
      for (const topic of topics) {
        try {
          for (const { partition, high } of await this.offsets((admin) => admin.fetchTopicOffsets(topic))) {
            highs.set(`${topic}:${partition}`, high);
            this.knownHighs.set(`${topic}:${partition}`, high);
          }
        } catch (err) {
          if (!isUnknownTopic(err)) {
            // Once per episode: a broker that is gone fails this every second until it is back.
            if (this.offsetsFailingSince === null) {
              this.offsetsFailingSince = this.now();
              this.deps.log.warn({ err: errorLine(err), topic }, 'cannot read log offsets; partitions that get no batch meanwhile count as stalled');
            }
            continue;
          }
          this.topicGone(topic);
        }
      }
      if (highs.size > 0) this.offsetsFailingSince = null;
      const hooks: RetryHooks = { shouldContinue: () => this.running };
      const ready = await this.readyProcessors();
      for (const [key, since] of this.stalledSince) this.deps.metrics.partitionStalledSeconds.set(partitionLabels(key), (this.now() - since) / 1000);
      for (const [key, processor] of ready) {
        try {
          // A batch is under way (maybe retrying for long): a tick would only queue behind it
          // and hold up every other partition's tick.
          if (processor.busy) continue;
          const high = highs.get(key);
          if (high !== undefined) processor.noteHighWatermark(high);
          await processor.tick(hooks);
          await this.updateGauges(key, high);
        } catch (err) {
          if (err instanceof PartitionFencedError) {
            this.processors.delete(key); // claimed again on the next tick if still ours
          } else {
            this.deps.log.warn({ err: errorLine(err), partition: key }, 'tick failed');
          }
        }
      }
    } catch (err) {
      this.deps.log.warn({ err }, 'tick failed');
    } finally {
      this.ticking = false;
    }
  }

  /** Open sessions from the partition's close deadlines; lag of an idle partition from its high watermark. */
  private async updateGauges(key: string, high: string | undefined): Promise<void> {
    const labels = partitionLabels(key);
    if (!this.stalledSince.has(key)) this.deps.metrics.partitionStalledSeconds.set(labels, 0);
    const store = this.stores.get(key);
    if (store) this.deps.metrics.openSessions.set(labels, await store.openSessionKeys());
    const resolved = this.resolvedOffsets.get(key);
    if (high !== undefined && resolved !== undefined) {
      const lag = BigInt(high) - 1n - resolved;
      this.deps.metrics.consumerLag.set(labels, Number(lag > 0n ? lag : 0n));
    }
  }

  /**
   * The topic was deleted under us (maybe to be re-created): drop its partitions' processors, so
   * that each is claimed again, and checked against its state, once the topic is back.
   */
  private topicGone(topic: string): void {
    const dropped = [...this.processors.keys()].filter((key) => key.slice(0, key.lastIndexOf(':')) === topic);
    if (dropped.length === 0) return;
    for (const key of dropped) this.processors.delete(key);
    this.deps.log.warn({ topic, partitions: dropped.length }, 'topic is gone: its partitions are claimed again, and checked against their state, when it is back');
  }

  /** A partition that went to another worker: its gauges are that worker's to report now. */
  private forgetPartition(key: string): void {
    this.stores.delete(key);
    this.resolvedOffsets.delete(key);
    this.stalledSince.delete(key);
    this.unfedSince.delete(key); // no longer ours: its wait is the new owner's to judge
    this.deps.metrics.partitionStalledSeconds.remove(partitionLabels(key));
    this.deps.metrics.openSessions.remove(partitionLabels(key));
    this.deps.metrics.consumerLag.remove(partitionLabels(key));
  }

  private async createTopics(): Promise<void> {
    const { topics, deadLetterTopic, topicPartitions } = this.config.kafka;
    const existing = new Set(await this.admin.listTopics());
    const missing = [...topics, deadLetterTopic].filter((t) => !existing.has(t));
    if (missing.length === 0) return;
    const { replication } = await createTopics(this.admin, missing, topicPartitions);
    this.deps.log.info({ topics: missing, partitions: topicPartitions, replicationFactor: replication.replicationFactor ?? 'broker default' }, 'created topics');
  }

  private fail(err: unknown): void {
    if (this.fatalError) return;
    this.fatalError = err;
    this.running = false;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.deps.log.fatal({ err }, 'worker gave up');
    const disconnect = Promise.allSettled([
      this.consumer.stop(),
      this.producer.disconnect(),
      this.admin.disconnect(),
      this.topicIds.close(),
      this.offsetsAdmin?.then((admin) => admin.disconnect()),
    ]);
    const bound = new Promise((resolve) => setTimeout(resolve, this.config.shutdownTimeoutMs).unref());
    void Promise.race([disconnect, bound]).then(() => this.resolveStopped(err));
  }
}

/** Raced against a claim: what a tick sees of a partition whose claim has not finished. */
const NOT_READY = Promise.resolve('not ready' as const);

/**
 * The offset a batch's fetch asked for. kafkajs keeps it on the batch (it drops the messages
 * of a record batch before it) but leaves it out of its types.
 */
function fetchedOffsetOf(batch: EachBatchPayload['batch']): bigint | null {
  const fetched = (batch as unknown as { fetchedOffset?: unknown }).fetchedOffset;
  return typeof fetched === 'string' || typeof fetched === 'number' ? BigInt(fetched) : null;
}

function partitionLabels(key: string): { topic: string; partition: string } {
  const i = key.lastIndexOf(':');
  return { topic: key.slice(0, i), partition: key.slice(i + 1) };
}

/** kafkajs' answer for a topic that does not exist (deleted, or not created yet). */
function isUnknownTopic(err: unknown): boolean {
  const { type, message } = (err ?? {}) as { type?: unknown; message?: unknown };
  return type === 'UNKNOWN_TOPIC_OR_PARTITION' || /does not host this topic-partition|unknown topic/i.test(String(message));
}
