/**
 * Hands collected events to Kafka and tells each request whether its events were acknowledged.
 *
 * - One kafkajs producer (`acks = all`, at most one request in flight, so a partition's events
 *   stay in order), messages keyed by user key with the Java-compatible partitioner, so a
 *   visitor's events land on one partition whichever client produced them.
 * - A bounded in-memory queue: a request's events wait there while the previous produce request
 *   is in flight, and leave together in the next one (batching by itself, no linger timer).
 * - A request is answered only once Kafka acknowledged all its events. When the queue cannot take
 *   them, when Kafka failed recently, or when the acknowledgement does not come within the
 *   deadline, the request is refused (503 with Retry-After) instead of accepting what we may not
 *   deliver. Events of a refused request may still arrive (the client retries with the same
 *   message ids, which the worker de-duplicates), but an accepted event is never lost.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { CollectConfig } from '../config';
import { createProducer, sendRecord, type ResendPolicy } from '../kafka/producer';

export interface OutgoingEvent {
  key: string;
  value: string;
}

export class DeliveryUnavailableError extends Error {
  constructor(readonly reason: 'queue_full' | 'kafka_unavailable' | 'ack_timeout' | 'shutting_down') {
    super(`cannot deliver now: ${reason.replace('_', ' ')}`);
  }
}

export interface DeliveryOptions {
  topic: string;
  queueMaxEvents: number;
  batchMaxEvents: number;
  ackTimeoutMs: number;
  /** After a failed produce, new requests are refused for this long. */
  cooldownMs: number;
  onProduced?: (events: number, seconds: number) => void;
  onFailed?: (err: unknown) => void;
}

/** The delivery settings of the collector's configuration (callbacks are the caller's). */
export function deliveryOptions(config: Pick<CollectConfig, 'topic' | 'queueMaxEvents' | 'produceBatchEvents' | 'ackTimeoutMs' | 'retryAfterSeconds'>): DeliveryOptions {
  return {
    topic: config.topic,
    queueMaxEvents: config.queueMaxEvents,
    batchMaxEvents: config.produceBatchEvents,
    ackTimeoutMs: config.ackTimeoutMs,
    cooldownMs: config.retryAfterSeconds * 1000,
  };
}

interface Pending {
  events: OutgoingEvent[];
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** Set once the request gave up waiting: its events are not sent if they have not left yet. */
  abandoned: boolean;
}

export interface Sender {
  send(topic: string, messages: OutgoingEvent[]): Promise<void>;
}

export class Delivery {
  private queue: Pending[] = [];
  private queued = 0;
  private inFlight = 0;
  private sending = false;
  private unavailableUntil = 0;
  private closing = false;
  private idle: Array<() => void> = [];
  producedTotal = 0;

  constructor(
    private readonly sender: Sender,
    private readonly options: DeliveryOptions,
  ) {}

  /** Events waiting for Kafka (queued and in flight). */
  get depth(): number {
    return this.queued + this.inFlight;
  }

  get available(): boolean {
    return !this.closing && Date.now() >= this.unavailableUntil;
  }

  /** Resolves once Kafka acknowledged every event; rejects with `DeliveryUnavailableError`. */
  deliver(events: OutgoingEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    if (this.closing) return Promise.reject(new DeliveryUnavailableError('shutting_down'));
    if (Date.now() < this.unavailableUntil) return Promise.reject(new DeliveryUnavailableError('kafka_unavailable'));
    if (this.depth + events.length > this.options.queueMaxEvents) return Promise.reject(new DeliveryUnavailableError('queue_full'));
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = {
        events,
        resolve,
        reject,
        abandoned: false,
        timer: setTimeout(() => {
          pending.abandoned = true;
          reject(new DeliveryUnavailableError('ack_timeout'));
        }, this.options.ackTimeoutMs),
      };
      this.queue.push(pending);
      this.queued += events.length;
      void this.pump();
    });
  }

  /** Refuses new events and resolves when every queued one was sent or refused. */
  async drain(): Promise<void> {
    this.closing = true;
    if (this.depth === 0 && !this.sending) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private async pump(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const batch: Pending[] = [];
        let count = 0;
        while (this.queue.length > 0) {
          const next = this.queue[0] as Pending;
          if (batch.length > 0 && count + next.events.length > this.options.batchMaxEvents) break;
          this.queue.shift();
          this.queued -= next.events.length;
          if (next.abandoned) continue;
          batch.push(next);
          count += next.events.length;
        }
        if (batch.length === 0) continue;
        this.inFlight = count;
        const started = process.hrtime.bigint();
        try {
          await this.sender.send(
            this.options.topic,
            batch.flatMap((p) => p.events),
          );
          this.producedTotal += count;
          this.options.onProduced?.(count, Number(process.hrtime.bigint() - started) / 1e9);
          for (const p of batch) {
            clearTimeout(p.timer);
            p.resolve();
          }
        } catch (err) {
          this.options.onFailed?.(err);
          this.unavailableUntil = Date.now() + this.options.cooldownMs;
          for (const p of batch) {
            clearTimeout(p.timer);
            p.reject(new DeliveryUnavailableError('kafka_unavailable'));
          }
          // What waits behind the failed batch would most likely fail too: refuse it now.
          for (const p of this.queue.splice(0)) {
            clearTimeout(p.timer);
            p.reject(new DeliveryUnavailableError('kafka_unavailable'));
          }
          this.queued = 0;
        } finally {
          this.inFlight = 0;
        }
      }
    } finally {
      this.sending = false;
      if (this.depth === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }
}

/**
 * What one produce request of the collector may take: a few attempts within seconds, then the
 * requests waiting on it are refused (503) and their clients retry.
 */
const COLLECTOR_RESEND: ResendPolicy = { attempts: 4, firstPauseMs: 200, maxPauseMs: 2_000 };

/**
 * The production sender: a kafkajs producer, each batch sent whole again after a failed attempt
 * (kafkajs' own retry can drop a partition when a broker dies: see kafka/producer.ts). After a
 * batch failed for good the producer is replaced by a new one before the next send, on fresh
 * connections, rather than reusing one whose connection broke mid-request.
 */
export class KafkaSender implements Sender {
  private producer: Producer | null = null;
  private broken = false;

  private constructor(private readonly kafka: Kafka) {}

  static async connect(kafka: Kafka): Promise<KafkaSender> {
    const sender = new KafkaSender(kafka);
    await sender.current();
    return sender;
  }

  private async current(): Promise<Producer> {
    if (this.producer && !this.broken) return this.producer;
    const old = this.producer;
    this.producer = null;
    this.broken = false;
    if (old) await old.disconnect().catch(() => undefined);
    // Not an idempotent producer. Its guarantee (no duplicate from the producer's own retries)
    // needs retries without bound — kafkajs warns "Limiting retries for the idempotent producer
    // may invalidate EoS guarantees" otherwise — while a collector must give up on a produce
    // request within seconds, so its client hears 503 and Kafka's outage is refused quickly. And
    // nothing here needs it: a refused request is retried by its client with the same message
    // ids anyway, and the worker drops duplicate event ids; the order within a partition is kept
    // by one request in flight. So: bounded retries, acks=all, one request at a time.
    const producer = createProducer(this.kafka, { maxInFlightRequests: 1 });
    await producer.connect();
    this.producer = producer;
    return producer;
  }

  async send(topic: string, messages: OutgoingEvent[]): Promise<void> {
    try {
      await sendRecord(() => this.current(), { topic, acks: -1, messages }, COLLECTOR_RESEND);
    } catch (err) {
      this.broken = true;
      throw err;
    }
  }

  async disconnect(): Promise<void> {
    await this.producer?.disconnect();
  }
}
