/**
 * Builds the kafkajs client from configuration, with its logs routed into pino. KafkaJS only
 * ships GZIP compression; producers using snappy/lz4/zstd need a codec registered, which we
 * do not bundle (see README).
 */
import { Kafka, logLevel as KafkaLogLevel, type ConsumerConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { clientLogLevel } from './client-log';
import { isUnresponsive, repairBrokerHandshake } from './broker-handshake';

export interface KafkaClientOptions {
  /**
   * Log the client's own errors and warnings at debug: for one-shot commands, whose failure is
   * reported as one line on stderr, so the terminal shows no client noise or stack traces (the
   * detail is in the JSON log at LOG_LEVEL=debug). The worker keeps them at their level.
   */
  quiet?: boolean;
}

/**
 * Timings tuned to find a dead or frozen broker in seconds, not minutes. A broker killed
 * outright refuses connections at once; one that is frozen (SIGSTOP, a network partition)
 * answers nothing, so only timeouts find it:
 * - `connectionTimeout` 3 s: a connect on loopback or a LAN takes milliseconds; 3 s still
 *   covers a TLS handshake to a busy broker.
 * - `requestTimeout` 10 s: above the longest fetch wait we ask for (KAFKA_MAX_WAIT_MS,
 *   ≤ 5 s) plus a busy broker's answer time, and well below the session timeout, so a frozen
 *   broker is given up on while the group still holds our membership.
 * - `retry`: 5 tries from 300 ms doubling up to 3 s (≈ 8 s in all): a leader election in a
 *   KRaft cluster takes a few seconds, and after that kafkajs has refreshed its metadata; past
 *   it the client reports the failure and the consumer supervisor builds a new consumer.
 */
export const clientTimings = {
  connectionTimeout: 3_000,
  requestTimeout: 10_000,
  retry: { initialRetryTime: 300, maxRetryTime: 3_000, retries: 5 },
} as const;

/**
 * The worker's consumer timings:
 * - `sessionTimeout` 30 s: the group drops a member that has not heartbeat for this long; our
 *   batches heartbeat every second while they wait on a slow dependency, so only a dead
 *   process (or a frozen one) reaches it, and its partitions then move within 30 s.
 * - `heartbeatInterval` 3 s: a tenth of the session timeout, as Kafka recommends.
 * - `rebalanceTimeout` 10 s: how long a rebalance waits for members to rejoin. kafkajs waits for
 *   a JoinGroup answer this long plus 5 s, so it is also how long a join sent to a coordinator
 *   that just died can hold a consumer up. A member still inside a slow ClickHouse or Redis
 *   call when a rebalance starts may miss it: it is left out of that generation, the others go
 *   on at once, and it rejoins when its call returns (its batch is fenced, nothing is lost).
 * - `metadataMaxAge` 30 s (kafkajs default 5 min): partition leaders are re-read at least this
 *   often even when no request fails, so a moved leader is found without a crash.
 */
export const consumerTimings: Pick<ConsumerConfig, 'sessionTimeout' | 'heartbeatInterval' | 'rebalanceTimeout' | 'metadataMaxAge'> = {
  sessionTimeout: 30_000,
  heartbeatInterval: 3_000,
  rebalanceTimeout: 10_000,
  metadataMaxAge: 30_000,
};

/**
 * The bootstrap list, in a new random order each time a kafkajs client asks for it. kafkajs
 * starts every new client (consumer, producer, admin) on the list's FIRST broker, and moves to
 * the next only on a refused connection: a broker that is frozen (SIGSTOP, a network partition)
 * still accepts TCP connections and then answers nothing, so with a fixed list no new client
 * could connect while the first broker hangs — and a rebuilt consumer would be as stuck as the
 * old one. Shuffled, each new client has its own chance of starting on a live broker.
 */
export function shuffledBrokers(brokers: readonly string[]): () => string[] {
  return () => {
    const list = [...brokers];
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [list[i], list[j]] = [list[j] as string, list[i] as string];
    }
    // A broker that just failed a handshake (frozen) goes last: each start on it costs a
    // handshake timeout before kafkajs moves on.
    return [...list.filter((b) => !isUnresponsive(b)), ...list.filter((b) => isUnresponsive(b))];
  };
}

/** A kafkajs message repeated within this long belongs to the same episode (logged once). */
const KAFKA_LOG_EPISODE_MS = 60_000;

/** Which log lines open an episode: a key seen again within `windowMs` of its last sighting does not. */
export class LogEpisodes {
  private readonly lastSeen = new Map<string, number>();

  constructor(private readonly windowMs: number) {}

  first(key: string, now: number): boolean {
    const last = this.lastSeen.get(key);
    this.lastSeen.set(key, now);
    if (this.lastSeen.size > 1_000) this.prune(now);
    return last === undefined || now - last > this.windowMs;
  }

  private prune(now: number): void {
    for (const [key, at] of this.lastSeen) if (now - at > this.windowMs) this.lastSeen.delete(key);
  }
}

export function createKafka(config: Config['kafka'], log: Logger, options: KafkaClientOptions = {}): Kafka {
  repairBrokerHandshake();
  return new Kafka({
    clientId: config.clientId,
    brokers: shuffledBrokers(config.brokers),
    ssl: config.ssl,
    sasl: config.sasl as SASLOptions | undefined,
    ...clientTimings,
    logLevel: KafkaLogLevel.WARN,
    logCreator: () => {
      const episodes = new LogEpisodes(KAFKA_LOG_EPISODE_MS);
      return (entry: LogEntry) => {
        const { message, ...extra } = entry.log;
        const fields = { kafka: entry.namespace, ...extra };
        const level = options.quiet ? 'debug' : clientLogLevel(entry);
        if (level === 'error' || level === 'warn') {
          // kafkajs says "error" for what it retries itself (a broker gone, a leader moving):
          // a warning, once per episode; our own code reports what it could not recover from.
          const first = episodes.first(`${entry.namespace}|${String(extra.broker ?? '')}|${message}`, Date.now());
          log[first ? 'warn' : 'debug'](fields, message);
        } else {
          log[level](fields, message);
        }
      };
    },
  });
}
