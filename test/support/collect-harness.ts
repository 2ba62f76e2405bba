/**
 * Running the real collector in integration tests: in process, on a free port, producing to a
 * test topic through a real kafkajs producer, with salts under a test Redis prefix, its log lines
 * kept in memory (the privacy tests search them).
 */
import { Readable, Writable } from 'node:stream';
import type { Kafka } from 'kafkajs';
import { Collector } from '../../src/collect/collector';
import type { CollectConfig } from '../../src/config';
import { recompute, type SessionRecord } from '../../src/recompute/recompute';
import { createLogger } from '../../src/observability/logger';
import { collectConfig } from './collect-app';
import { getRedisUrl } from './services';

export interface RunningCollector {
  collector: Collector;
  url: string;
  logs: () => string;
}

export async function startCollector(
  kafka: Kafka,
  redisPrefix: string,
  overrides: Partial<CollectConfig>,
  options: { now?: () => number; shutdownTimeoutMs?: number } = {},
): Promise<RunningCollector> {
  let logs = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs += chunk.toString();
      done();
    },
  });
  const collector = await Collector.start({
    config: collectConfig(overrides),
    kafka,
    redis: { url: getRedisUrl(), tls: false, keyPrefix: redisPrefix },
    sessionTimeoutMs: 30 * 60_000,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 20_000,
    log: createLogger('debug', sink),
    now: options.now,
  });
  return { collector, url: `http://127.0.0.1:${collector.port}`, logs: () => logs };
}

/**
 * What `recompute --format segment` makes of these Segment messages (as NDJSON lines, like a
 * file): the offline path the collected sessions must equal.
 */
export async function recomputeSegment(messages: ReadonlyArray<Record<string, unknown>>, timeoutMinutes = 30): Promise<SessionRecord[]> {
  const records: SessionRecord[] = [];
  let pending = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) if (line) records.push(JSON.parse(line) as SessionRecord);
      done();
    },
  });
  const lines = messages.map((m) => JSON.stringify(m) + '\n');
  const onInvalid = (line: number, _text: string, err: Error) => {
    throw new Error(`test message on line ${line} is invalid: ${err.message}`);
  };
  await recompute(Readable.from(lines), out, { timeoutMs: timeoutMinutes * 60_000, input: { format: 'segment' }, onInvalid });
  return records;
}
