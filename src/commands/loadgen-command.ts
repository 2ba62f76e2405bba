/**
 * `sessionizer loadgen --users N --rate R --duration D`: live synthetic traffic for load tests
 * and demos. Events come from the seeded generator (src/loadgen/traffic.ts: web, app, server and
 * store visitors, logins, campaigns, key events, exact duplicates, bounded disorder) and are
 * sent to Kafka keyed by user key, paced to R events per second for D seconds: R × D events.
 *
 * Event times are live: each event is stamped with the time it is sent, minus the disorder the
 * generator gave it (so events still arrive up to --disorder-seconds out of order), and a
 * duplicate carries exactly the timestamp of its original. The generator's own times only decide
 * the order in which users act, so visits are compressed into the run: sessions here are shaped
 * by the pacing, not by the generator's pauses. When the generated traffic runs out before D
 * seconds, a new round starts with new ids (another seed).
 */
import { loadConfig, type Config } from '../config';
import { ensureTopic, EventSender, userKeyOfJson } from '../kafka/event-sender';
import { createKafka } from '../kafka/kafka-client';
import { preflight } from '../preflight';
import { generateTraffic, type RawEvent } from '../loadgen/traffic';
import { createLogger, secretsOf } from '../observability/logger';

export interface LoadgenCommandOptions {
  users: number;
  /** Events per second. */
  rate: number;
  /** Seconds. */
  duration: number;
  seed?: number;
  duplicateRate?: number;
  disorderSeconds?: number;
  /** Share of events with an invalid timestamp (dead-letter traffic); 0 by default. */
  invalidRate?: number;
  topic?: string;
  /** Prefix of user and event ids; a fresh one per run by default, so runs never collide. */
  idPrefix?: string;
}

export interface LoadgenCommandDeps {
  config?: Config;
  /** Where progress and the final count go; stderr by default. */
  log?: (text: string) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface LoadgenStats {
  topic: string;
  sent: number;
  duplicates: number;
  users: number;
  seconds: number;
}

const TICK_MS = 100;
/** Duplicates follow their original closely; this many recent stamps are remembered. */
const REMEMBERED_STAMPS = 50_000;

export async function runLoadgen(options: LoadgenCommandOptions, deps: LoadgenCommandDeps = {}): Promise<LoadgenStats> {
  const config = deps.config ?? loadConfig();
  const write = deps.log ?? ((text: string) => void process.stderr.write(text));
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const topic = options.topic ?? (config.kafka.topics[0] as string);
  const total = Math.round(options.rate * options.duration);

  const log = createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'loadgen' });
  await preflight(config, { kafka: { topics: [topic] } }, log);
  const kafka = createKafka(config.kafka, log, { quiet: true });
  if (config.kafka.createTopics) await ensureTopic(kafka, topic, config.kafka.topicPartitions);
  const sender = await EventSender.connect(kafka, topic, { maxBatchMessages: Math.max(1, Math.min(1000, Math.ceil(options.rate / 10))) });

  const events = liveEvents(options, now);
  const users = new Set<string>();
  let duplicates = 0;
  let produced = 0;
  const started = now();
  let nextReport = started + 10_000;
  try {
    while (produced < total) {
      const due = Math.min(total, Math.floor(((now() - started) / 1000) * options.rate));
      while (produced < due) {
        const { event, duplicate } = events.next().value as LiveEvent;
        const key = userKeyOfJson(event);
        if (key) users.add(key);
        if (duplicate) duplicates += 1;
        await sender.add(key, JSON.stringify(event));
        produced += 1;
      }
      await sender.flush();
      if (now() >= nextReport) {
        write(`loadgen: ${sender.sent} of ${total} events sent\n`);
        nextReport += 10_000;
      }
      if (produced < total) await sleep(TICK_MS);
    }
    await sender.close();
  } catch (err) {
    await sender.abort();
    throw err;
  }
  const seconds = (now() - started) / 1000;
  write(
    `loadgen: ${sender.sent} events (${duplicates} duplicates) of ${users.size} users sent to ${topic} ` +
      `in ${seconds.toFixed(1)}s (${Math.round(sender.sent / Math.max(seconds, 0.001))}/s)\n`,
  );
  return { topic, sent: sender.sent, duplicates, users: users.size, seconds };
}

interface LiveEvent {
  event: RawEvent;
  duplicate: boolean;
}

/** Generated events, re-stamped with live times (see the file comment); endless. */
export function* liveEvents(options: LoadgenCommandOptions, now: () => number): Generator<LiveEvent> {
  const disorderMs = (options.disorderSeconds ?? 5) * 1000;
  const prefix = options.idPrefix ?? `lg${now().toString(36)}-`;
  const stamps = new Map<string, number>();
  for (let round = 0; ; round++) {
    const start = now();
    const traffic = generateTraffic({
      users: options.users,
      startMs: start,
      spanMs: Math.max(1, options.duration) * 1000,
      duplicateRate: options.duplicateRate ?? 0.02,
      disorderMs,
      invalidRate: options.invalidRate ?? 0,
      seed: (options.seed ?? 1) + round,
      idPrefix: round === 0 ? prefix : `${prefix}r${round}-`,
    });
    let latest = -Infinity;
    let any = false;
    for (const generated of traffic) {
      any = true;
      const generatedMs = eventTime(generated);
      if (generatedMs === null) {
        yield { event: generated, duplicate: false };
        continue;
      }
      latest = Math.max(latest, generatedMs);
      const id = String(generated.event_id);
      const known = stamps.get(id);
      const stamp = known ?? now() - Math.min(disorderMs, latest - generatedMs);
      if (known === undefined) {
        stamps.set(id, stamp);
        if (stamps.size > REMEMBERED_STAMPS) stamps.delete(stamps.keys().next().value as string);
      }
      const event = { ...generated, timestamp: typeof generated.timestamp === 'number' ? stamp : new Date(stamp).toISOString() };
      yield { event, duplicate: known !== undefined };
    }
    if (!any) throw new Error('loadgen: the traffic generator produced no events (is --users at least 1?)');
  }
}

function eventTime(event: RawEvent): number | null {
  const ts = event.timestamp;
  if (typeof ts === 'number') return ts;
  if (typeof ts === 'string') {
    const ms = Date.parse(ts);
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}
