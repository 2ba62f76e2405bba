/**
 * Owns the kafkajs consumer and makes every call on it safe at any moment.
 *
 * kafkajs (in maintenance mode) has known ways of getting stuck or throwing when a broker dies:
 * a consumer keeps asking a dead broker from its cached metadata, crashes minutes later with
 * `KafkaJSNumberOfRetriesExceeded`, and a `seek()` between a crash and its restart throws
 * `Consumer group was not initialized`. So kafkajs never restarts a consumer itself here: on a
 * crash, or when the worker's watchdog finds a partition that has stopped receiving, the
 * supervisor throws the consumer away and builds a new one — a new kafkajs consumer has its own
 * cluster object, hence fresh metadata and fresh connections — with backoff, for as long as the
 * worker runs. Seeks asked for while no consumer can take them are remembered and applied when
 * the next consumer has joined its group.
 */
import type { Consumer, ConsumerConfig, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { within } from '../preflight/deadline';
import { coordinatorIdNow, leaveGroupNow } from './group-coordinator';

export type RestartReason = 'crash' | 'stall';

export interface ConsumerSupervisorOptions {
  kafka: Kafka;
  /** The consumer's options; its `retry.restartOnFailure` is ours (always false: we rebuild). */
  consumer: ConsumerConfig;
  topics: string[];
  partitionsConsumedConcurrently: number;
  eachBatch: (payload: EachBatchPayload) => Promise<void>;
  /** Each assignment the group gives a consumer, new ones included. */
  onAssignment: (assignment: Record<string, number[]>) => void;
  /** Called when a consumer is thrown away, before its replacement is built. */
  onRebuild?: (reason: RestartReason) => void;
  onConnectionChange?: (connected: boolean) => void;
  countRestart: (reason: RestartReason) => void;
  log: Logger;
  /** Backoff between failed builds: first and longest pause. */
  backoffMs?: { initial: number; max: number };
  /** Longest wait for a consumer being thrown away to leave its group. */
  disconnectTimeoutMs?: number;
}

/** Between failed builds: short, because each build may start on another broker (shuffled seeds). */
const DEFAULT_BACKOFF = { initial: 500, max: 4_000 };
const DEFAULT_DISCONNECT_TIMEOUT_MS = 5_000;
/** Between attempts to take a thrown-away consumer's member out of its group. */
const EVICT_RETRY_MS = 1_000;
/** kafkajs' default session timeout, when the consumer's options leave it out. */
const DEFAULT_SESSION_TIMEOUT_MS = 30_000;
/**
 * Longest wait for a broker to name the group's coordinator: it answers in milliseconds, but the
 * lookup's first seed may be the frozen broker, given up on after its handshake bound (4 s,
 * broker-handshake.ts) before the next one is asked.
 */
const COORDINATOR_LOOKUP_MS = 6_000;

export class ConsumerSupervisor {
  private consumer: Consumer | null = null;
  /** True once the current consumer has joined its group: from then on it takes seeks. */
  private joined = false;
  /** The current consumer's member id in its group, once it has joined. */
  private memberId: string | null = null;
  /** When the current consumer last joined or had a heartbeat answered. */
  private lastHeartbeatAt = 0;
  /** The node id of the coordinator the current consumer joined through, once looked up. */
  private joinedCoordinator: number | null = null;
  private stopped = false;
  private rebuilding: Promise<void> | null = null;
  /** Positions wanted per `topic:partition`, until a consumer has taken them. */
  private readonly pendingSeeks = new Map<string, string>();
  private generation = 0;

  constructor(private readonly options: ConsumerSupervisorOptions) {}

  /** Builds and runs the first consumer; fails when it cannot (the worker then fails to start). */
  async start(): Promise<void> {
    await this.build();
  }

  /** Asks the consumer to read `topic:partition` from `offset` next: now, or as soon as a consumer can. */
  seek(topic: string, partition: number, offset: string): void {
    this.pendingSeeks.set(`${topic}:${partition}`, offset);
    this.applySeeks();
  }

  /**
   * How long the current consumer, once joined, has had no heartbeat answered (0 before it
   * joined). A member whose coordinator froze keeps fetching from live leaders while the group
   * moves on without it; kafkajs notices only when the coordinator comes back.
   */
  heartbeatSilenceMs(now = Date.now()): number {
    return this.consumer && this.joined && !this.rebuilding ? now - this.lastHeartbeatAt : 0;
  }

  /**
   * The coordinator the current consumer joined through, and the one a broker that answers names
   * now. When they differ, the consumer's heartbeats go to a broker the cluster has replaced
   * (frozen or partitioned off), and kafkajs will not find out until a request to it times out.
   * Null when either cannot be told (not joined yet, or no answer within COORDINATOR_LOOKUP_MS).
   */
  async coordinators(): Promise<{ joinedThrough: number; now: number } | null> {
    const consumer = this.consumer;
    const joinedThrough = this.joinedCoordinator;
    if (!consumer || !this.joined || joinedThrough === null) return null;
    const now = await this.lookUpCoordinator().catch(() => null);
    if (now === null || this.consumer !== consumer) return null;
    return { joinedThrough, now };
  }

  /** The group's coordinator as a broker that answers names it, within COORDINATOR_LOOKUP_MS. */
  private lookUpCoordinator(): Promise<number> {
    return within(COORDINATOR_LOOKUP_MS, coordinatorIdNow(this.options.kafka, this.options.consumer.groupId));
  }

  /** How many consumers were built (1 after start). */
  get builds(): number {
    return this.generation;
  }

  /**
   * Throws the consumer away and builds a new one, retrying with backoff until one runs or the
   * supervisor is stopped. Calls while a rebuild is under way join it.
   */
  restart(reason: RestartReason, detail: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.rebuilding) return this.rebuilding;
    this.options.countRestart(reason);
    this.options.log.warn({ reason, detail }, `kafka consumer rebuilt (${reason}): ${detail}`);
    const rebuilding = this.rebuild(reason).finally(() => {
      if (this.rebuilding === rebuilding) this.rebuilding = null;
    });
    this.rebuilding = rebuilding;
    return rebuilding;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.rebuilding?.catch(() => undefined);
    const consumer = this.consumer;
    this.consumer = null;
    this.joined = false;
    if (consumer) await consumer.disconnect();
  }

  private async rebuild(reason: RestartReason): Promise<void> {
    const old = this.consumer;
    const memberId = this.memberId;
    this.consumer = null;
    this.joined = false;
    this.memberId = null;
    this.joinedCoordinator = null;
    this.options.onRebuild?.(reason);
    // Leaving the group lets the others take our partitions at once, and keeps the next
    // rebalance from waiting for a member that will never rejoin. A consumer stuck on a dead
    // broker may never finish leaving (its coordinator may be the dead one), so the member is
    // also taken out through the coordinator as it is now; whichever is done first ends the
    // wait, which is bounded anyway (the eviction goes on in the background after it).
    if (old) {
      const disconnected = old.disconnect();
      disconnected.catch(() => undefined);
      const evicted = memberId ? this.evict(memberId) : new Promise<void>(() => undefined);
      await within(this.options.disconnectTimeoutMs ?? DEFAULT_DISCONNECT_TIMEOUT_MS, Promise.race([disconnected, evicted])).catch(() => undefined);
    }
    const { initial, max } = this.options.backoffMs ?? DEFAULT_BACKOFF;
    let pause = initial;
    let failures = 0;
    while (!this.stopped) {
      try {
        await this.build();
        if (failures > 0) this.options.log.info({ failures }, 'kafka consumer running again');
        return;
      } catch (err) {
        failures += 1;
        if (failures === 1) this.options.log.warn({ err: errorLine(err) }, `kafka consumer cannot start yet; retrying every ${max / 1000} s at most`);
        await sleep(pause);
        pause = Math.min(max, pause * 2);
      }
    }
  }

  private async build(): Promise<void> {
    const { kafka, topics } = this.options;
    const consumer = kafka.consumer({
      ...this.options.consumer,
      retry: { ...this.options.consumer.retry, restartOnFailure: async () => false },
    });
    this.generation += 1;
    const mine = () => this.consumer === consumer && !this.stopped;
    const { CRASH, GROUP_JOIN, HEARTBEAT, CONNECT, DISCONNECT } = consumer.events;
    consumer.on(HEARTBEAT, () => {
      if (mine()) this.lastHeartbeatAt = Date.now();
    });
    consumer.on(GROUP_JOIN, ({ payload }) => {
      if (!mine()) return;
      this.joined = true;
      this.lastHeartbeatAt = Date.now();
      this.memberId = payload.memberId;
      this.joinedCoordinator = null;
      this.options.onAssignment(payload.memberAssignment);
      this.applySeeks();
      // Which broker it joined through: kafkajs keeps it private, and a lookup now names the
      // same one (a coordinator moving in these milliseconds would need a rejoin anyway).
      this.lookUpCoordinator().then(
        (nodeId) => {
          if (mine() && this.memberId === payload.memberId) this.joinedCoordinator = nodeId;
        },
        (err: unknown) => this.options.log.debug({ err: errorLine(err) }, 'could not look up the group coordinator after joining'),
      );
    });
    consumer.on(CONNECT, () => mine() && this.options.onConnectionChange?.(true));
    consumer.on(DISCONNECT, () => mine() && this.options.onConnectionChange?.(false));
    consumer.on(CRASH, ({ payload }) => {
      if (mine()) void this.restart('crash', errorLine(payload.error));
    });
    this.consumer = consumer;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: true });
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: false,
        partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.options.eachBatch(payload),
      });
    } catch (err) {
      if (this.consumer === consumer) this.consumer = null;
      await within(1_000, consumer.disconnect()).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Resolves once `memberId` is out of the group; never rejects. While the group has no
   * coordinator yet (the old one died; Kafka names a new one within its broker session timeout,
   * seconds) or the new one is still loading the group, the LeaveGroup is sent again every
   * EVICT_RETRY_MS, in the background, until it is taken or the member would have timed out by
   * itself: the new consumer's rebalance waits for the old member until then (up to the
   * rebalance timeout), and it only has to wait until the member is taken out.
   */
  private evict(memberId: string): Promise<void> {
    const { kafka, consumer } = this.options;
    const giveUpAt = Date.now() + (consumer.sessionTimeout ?? DEFAULT_SESSION_TIMEOUT_MS);
    return new Promise<void>((resolve) => {
      const attempt = (): void => {
        leaveGroupNow(kafka, consumer.groupId, memberId).then(resolve, (err: unknown) => {
          if (this.stopped || Date.now() + EVICT_RETRY_MS >= giveUpAt) {
            this.options.log.debug({ err: errorLine(err), memberId }, 'could not take the old member out of the group');
            return;
          }
          setTimeout(attempt, EVICT_RETRY_MS).unref();
        });
      };
      attempt();
    });
  }

  /** Hands remembered seeks to a consumer that has joined; keeps any it refuses for the next one. */
  private applySeeks(): void {
    const consumer = this.consumer;
    if (!consumer || !this.joined) return;
    for (const [key, offset] of this.pendingSeeks) {
      const i = key.lastIndexOf(':');
      try {
        consumer.seek({ topic: key.slice(0, i), partition: Number(key.slice(i + 1)), offset });
        this.pendingSeeks.delete(key);
      } catch (err) {
        // Between a crash and the rebuild: the next consumer takes it once it has joined.
        this.options.log.debug({ err: errorLine(err), partition: key, offset }, 'seek deferred');
        return;
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** An error as one readable line: its message and, for wrapped kafkajs errors, the cause's. */
export function errorLine(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { originalError?: unknown; cause?: unknown }).originalError ?? err.cause;
  return cause instanceof Error && cause.message !== err.message ? `${err.message} (${cause.message})` : err.message;
}
