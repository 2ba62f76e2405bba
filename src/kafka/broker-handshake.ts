/**
 * A repair of kafkajs 2.2.4 (in maintenance mode; no release will carry it): a broker that accepts
 * a connection and never answers must not poison the client.
 *
 * kafkajs' `Broker.connect()` opens the TCP connection, then asks the broker which API versions it
 * speaks. A frozen broker (SIGSTOP, a hung JVM, a network that keeps the socket open) accepts the
 * connection and never answers: the versions request times out and `connect()` throws — but the
 * socket stays open, and kafkajs takes an open socket for a connected broker. Its next `connect()`
 * returns at once without the versions, and every request then fails with "Broker not connected"
 * for as long as the socket lives. When the frozen broker was a new client's seed, the client's own
 * retry even took that for success (the timeout is not a connection error, so it did not move on
 * to another broker). In a fault test, a consumer rebuilt while the group's coordinator was frozen
 * could not start until the broker came back, 40 s later.
 *
 * The repair: when `connect()` fails before the broker told its versions, or has not had them
 * within HANDSHAKE_TIMEOUT_MS, close the socket (the next `connect()` starts afresh) and report a
 * connection error, the kind on which kafkajs moves to another broker of the bootstrap list.
 */
import { KafkaJSConnectionError } from 'kafkajs';

interface BrokerInternals {
  versions: unknown;
  brokerAddress: string;
  connectionPool: { destroy(): Promise<void>; pool: Array<{ rejectRequests(error: Error): void }> };
  connect(): Promise<void>;
}

const REPAIRED = Symbol.for('sessionizer.brokerHandshakeRepaired');

/**
 * Longest wait for a broker that accepted the connection to tell its API versions. A broker that
 * answers does so in milliseconds; without this bound kafkajs waits its whole request timeout
 * (10 s here) on a frozen one before trying the next broker, and every new client, a rebuilt
 * consumer's included, whose seed it is pays that. Authentication, which follows, keeps its own
 * timeout.
 */
const HANDSHAKE_TIMEOUT_MS = 4_000;

class HandshakeTimeout extends Error {
  constructor(readonly broker: string) {
    super(`no API versions within ${HANDSHAKE_TIMEOUT_MS / 1000} s`);
    this.name = 'HandshakeTimeout';
  }
}

/** How long a broker that failed a handshake is tried last when a client picks where to start. */
const UNRESPONSIVE_FOR_MS = 30_000;
/** `host:port` → until when it counts as unresponsive. */
const unresponsiveUntil = new Map<string, number>();

/**
 * Brokers whose connect failed before the handshake finished in the last half minute: a frozen
 * one (accepted the connection, never answered) or a stopped one (refused it). Either way a new
 * client should not start on them while another broker is there to try.
 */
export function isUnresponsive(address: string, now = Date.now()): boolean {
  const until = unresponsiveUntil.get(address);
  if (until === undefined) return false;
  if (until > now) return true;
  unresponsiveUntil.delete(address);
  return false;
}

/** Installs the repair once per process (kafkajs is one module instance); later calls do nothing. */
export function repairBrokerHandshake(): void {
  // kafkajs' own module (not a copy): the class its clients build their brokers from. A plain
  // require, so a test runner's module registry hands out the same instance as to kafkajs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Broker = require('kafkajs/src/broker') as { prototype: BrokerInternals & { [REPAIRED]?: true } };
  const proto = Broker.prototype;
  if (proto[REPAIRED]) return;
  if (typeof proto.connect !== 'function') throw new Error('kafkajs changed: Broker.prototype.connect is gone; review src/kafka/broker-handshake.ts');
  const connect = proto.connect;
  proto.connect = async function repairedConnect(this: BrokerInternals): Promise<void> {
    const handshake = connect.call(this);
    let timer: NodeJS.Timeout | undefined;
    const unanswered = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (!this.versions) reject(new HandshakeTimeout(this.brokerAddress));
      }, HANDSHAKE_TIMEOUT_MS);
    });
    try {
      await Promise.race([handshake, unanswered]);
    } catch (err) {
      // Abandoned on our timeout, kafkajs' own connect fails once its socket is closed below.
      handshake.catch(() => undefined);
      const name = (err as { name?: unknown } | null)?.name;
      // A lock timeout means another connect() of this broker is still under way: leave it be.
      if (this.versions || name === 'KafkaJSLockTimeout') throw err;
      // Closing a connection waits for its requests in flight: on our own timeout, fail the
      // unanswered versions request now rather than at kafkajs' request timeout.
      if (err instanceof HandshakeTimeout) for (const connection of this.connectionPool.pool) connection.rejectRequests(new KafkaJSConnectionError(err.message, { broker: this.brokerAddress }));
      await this.connectionPool.destroy().catch(() => undefined);
      unresponsiveUntil.set(this.brokerAddress, Date.now() + UNRESPONSIVE_FOR_MS);
      if (name === 'KafkaJSConnectionError') throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new KafkaJSConnectionError(`broker ${this.brokerAddress} accepted the connection but did not finish the handshake: ${message}`, { broker: this.brokerAddress });
    } finally {
      clearTimeout(timer);
    }
  };
  proto[REPAIRED] = true;
}
