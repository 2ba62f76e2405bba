/**
 * Broker faults under a running pool of two workers, on a private 3-node KRaft cluster
 * (replication factor 3, min.insync.replicas=2), while a paced stream keeps every partition busy:
 *
 *   (a) SIGKILL of a broker leading some of the topic's partitions (not the group coordinator);
 *   (b) SIGKILL of the group's coordinator;
 *   (c) a rolling restart of all three brokers, one at a time;
 *   (d) one broker (the coordinator) frozen with SIGSTOP for 60 s.
 *
 * And slow dependencies: ClickHouse frozen, Redis restarted, a broker frozen (second test).
 *
 * After each, the killed broker comes back. What must hold: no worker exits (and none reaches the
 * process's last-resort handler); on every partition no message waits longer than 20 s after it
 * became readable (printed per fault and partition); the sessions equal `recompute` field for
 * field; and every invalid message in the log has exactly one dead letter.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { Kafka, logLevel, type Message } from 'kafkajs';
import { startKafkaCluster, type LocalKafkaCluster } from '../../deploy/local/kafka-cluster';
import { migrate } from '../../src/clickhouse/migrations';
import { loadConfig } from '../../src/config';
import { createKafka, shuffledBrokers } from '../../src/kafka/kafka-client';
import { createLogger } from '../../src/observability/logger';
import { generateTraffic, type RawEvent } from '../../src/loadgen/traffic';
import { LAST_RESORT_MESSAGE } from '../../src/observability/last-resort';
import { pickPort } from '../../deploy/local/ports';
import { createClickHouseClient, getClickHouse, newRedisPrefix, uniqueName } from '../support';
import { PrivateRedis, wholeTopic, groupCoordinator, longestWaits, pacedProducer, partitionLeaders, receivedAt, sleep } from '../support/kafka-faults';
import { TcpProxy } from '../support/tcp-proxy';
import { REPO } from '../support/cli';
import { AUTH } from '../support/collect-app';
import { startCollector } from '../support/collect-harness';
import { readTopic } from '../support/read-topic';
import { WorkerProcess, recomputeRecords, userKeyOfRaw, waitForSessions, workerEnv } from '../support/worker-harness';

jest.setTimeout(20 * 60_000);

/** The longest a message may wait for a worker after a fault: seconds, not minutes. */
const RECOVERY_LIMIT_MS = 20_000;
const PARTITIONS = 6;

/** Messages no worker can apply: each must reach the dead-letter topic exactly once. */
const HOSTILE = ['not json', '{"type":"page_view"}', '{"event_id":"h","type":"page_view","timestamp":"yesterday","anonymous_id":"h"}', '[1,2,3]'];

interface Fault {
  name: string;
  from: number;
  to: number;
}

describe('a worker pool on a 3-broker Kafka cluster', () => {
  let cluster: LocalKafkaCluster;
  let dir: string;
  let kafka: Kafka;
  let admin: ClickHouseClient;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sessionizer-kafka-failover-'));
    cluster = await startKafkaCluster({ dir, basePort: 29392 });
    // Short timeouts for the test's own clients: a frozen broker must not hold up the producer long.
    kafka = new Kafka({ brokers: shuffledBrokers(cluster.brokers), clientId: 'failover-test', logLevel: logLevel.NOTHING, requestTimeout: 5_000, connectionTimeout: 2_000 });
    admin = await createClickHouseClient();
  });
  afterAll(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill()));
    for (const node of cluster?.nodes ?? []) cluster.signal(node.nodeId, 'SIGCONT');
    await admin?.close();
    await cluster?.stop();
    // FAILOVER_KEEP_DATA=1 keeps the brokers' log directories, to read the topics afterwards
    // with Kafka's own tools (was a message in the log at all?).
    if (process.env.FAILOVER_KEEP_DATA) console.log(`brokers' data kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });

  it('rides out a leader kill, a coordinator kill, a rolling restart and a frozen broker', async () => {
    const topic = uniqueName('failover');
    const deadLetter = `${topic}_dlq`;
    const database = uniqueName('failover');
    const groupId = uniqueName('failover_group');
    await migrate(admin, { database });
    await createTopics(topic, deadLetter);
    const env = await workerEnv({
      topic,
      groupId,
      redisPrefix: newRedisPrefix('failover'),
      database,
      deadLetterTopic: deadLetter,
      extra: { KAFKA_BROKERS: cluster.brokers.join(','), KAFKA_CREATE_TOPICS: 'false', LOG_LEVEL: 'info' },
    });
    for (let i = 0; i < 2; i++) workers.push(new WorkerProcess(env));
    await Promise.all(workers.map((w) => w.ready(120_000)));

    const events: RawEvent[] = [...generateTraffic({
      users: 300,
      startMs: Date.parse('2024-07-01T00:00:00Z'),
      spanMs: 6 * 3_600_000,
      duplicateRate: 0.02,
      disorderMs: 60_000,
      seed: 19,
      idPrefix: 'fo-',
    })];
    const messages: Message[] = [];
    events.forEach((event, i) => {
      messages.push({ key: userKeyOfRaw(event), value: JSON.stringify(event) });
      if (i % 400 === 0) messages.push({ key: `hostile-${i}`, value: HOSTILE[(i / 400) % HOSTILE.length] as string });
    });
    // The stream lasts through all four faults (about 3.5 minutes).
    const producer = pacedProducer(kafka, topic, messages, Math.ceil(messages.length / 200));
    const faults: Fault[] = [];
    const fault = async (name: string, act: () => Promise<void>): Promise<void> => {
      const from = Date.now();
      await act();
      faults.push({ name, from, to: Date.now() });
    };

    await sleep(10_000);
    await fault('(a) a partition leader SIGKILLed', async () => {
      const coordinator = await groupCoordinator(kafka, groupId);
      const leaders = [...new Set((await partitionLeaders(kafka, topic)).values())];
      const victim = leaders.find((node) => node !== coordinator) ?? (cluster.nodes.find((n) => n.nodeId !== coordinator)?.nodeId as number);
      cluster.signal(victim, 'SIGKILL');
      await sleep(15_000);
      await cluster.startNode(victim);
    });
    await sleep(5_000);
    await fault('(b) the group coordinator SIGKILLed', async () => {
      const coordinator = await groupCoordinator(kafka, groupId);
      cluster.signal(coordinator, 'SIGKILL');
      await sleep(15_000);
      await cluster.startNode(coordinator);
    });
    await sleep(5_000);
    await fault('(c) rolling restart of all three brokers', async () => {
      for (const node of cluster.nodes) {
        await cluster.stopNode(node.nodeId);
        await cluster.startNode(node.nodeId);
        await sleep(5_000);
      }
    });
    await sleep(5_000);
    await fault('(d) the coordinator frozen (SIGSTOP) for 60 s', async () => {
      const coordinator = await groupCoordinator(kafka, groupId);
      cluster.signal(coordinator, 'SIGSTOP');
      await sleep(60_000);
      cluster.signal(coordinator, 'SIGCONT');
    });
    await producer.done;
    console.log(`produced ${messages.length} messages; the producer's longest pause between acknowledged sends: ${producer.longestSendGapMs()} ms`);

    // Every acknowledged event is in the log. kafkajs' own produce retry used to drop a partition
    // whose leader moved mid-send (1–3 events in 8 of 13 runs); the project's producer sends a
    // failed record whole again (src/kafka/producer.ts), and this holds it to that.
    const log = await wholeTopic(kafka, topic);
    const inLog = new Set(log.filter((m) => !HOSTILE.includes(m.value)).map((m) => (JSON.parse(m.value) as { event_id: string }).event_id));
    const notInLog = events.filter((e) => !inLog.has(String(e.event_id))).map((e) => String(e.event_id));
    expect({ acknowledgedButNotInLog: notInLog }).toEqual({ acknowledgedButNotInLog: [] });
    const expected = await recomputeRecords(events);
    try {
      await waitForSessions(admin, database, expected, 240_000, () => workers.map((w) => w.output.slice(-2000)).join('\n---\n'));
    } finally {
      // Whatever happened: every valid event of the log reached the events table.
      const stored = await eventIds(admin, database);
      const skipped = log
        .filter((m) => !HOSTILE.includes(m.value))
        .filter((m) => !stored.has((JSON.parse(m.value) as { event_id: string }).event_id))
        .map((m) => `${m.partition}:${m.offset} ${m.value.slice(0, 60)}`);
      if (skipped.length > 0) console.log(`events never applied (${skipped.length}):\n${skipped.slice(0, 20).join('\n')}`);
      expect(skipped).toEqual([]);
    }

    // No worker exited, and none was saved only by the last-resort handler.
    for (const worker of workers) {
      expect(worker.child.exitCode).toBeNull();
      expect(worker.output).not.toContain(LAST_RESORT_MESSAGE);
    }

    // Waits per fault (a message the producer sent twice is in the log twice, and counts twice).
    const received = await receivedAt(admin, database);
    const report: string[] = [];
    // A fault's window: from just before it to a little after it, but not into the next one's.
    const windowOf = (i: number): [number, number] => {
      const { from, to } = faults[i] as Fault;
      const next = faults[i + 1];
      return [from - 2_000, Math.min(to + 5_000, next ? next.from - 2_000 : Number.POSITIVE_INFINITY)];
    };
    for (const [i, { name }] of faults.entries()) {
      const waits = longestWaits(log, received, ...windowOf(i));
      const line = [...Array(PARTITIONS).keys()].map((p) => `p${p} ${((waits.get(p) ?? 0) / 1000).toFixed(1)} s`).join(', ');
      report.push(`${name}: longest wait per partition: ${line}`);
    }
    console.log(report.join('\n'));
    for (const [i, { name }] of faults.entries()) {
      const longest = Math.max(0, ...longestWaits(log, received, ...windowOf(i)).values());
      if (longest > RECOVERY_LIMIT_MS) console.log(`${name}: a message waited ${longest} ms (limit ${RECOVERY_LIMIT_MS} ms)`);
      expect(longest).toBeLessThanOrEqual(RECOVERY_LIMIT_MS);
    }
    const invalid = log
      .filter((m) => HOSTILE.includes(m.value))
      .map((m) => `${m.partition}:${m.offset}`)
      .sort();
    const dead = await readTopic(kafka, deadLetter, invalid.length, 60_000);
    // Each invalid message of the log has a dead letter, and nothing else has one; the topic may
    // hold a message twice (sent again by a batch read again before its commit: at least once,
    // as documented), which `dead-letters list` shows once.
    const deadSources = dead.map((m) => `${m.headers['x-sessionizer-source-partition']}:${m.headers['x-sessionizer-source-offset']}`);
    console.log(`dead letters: ${deadSources.length} for ${invalid.length} invalid messages`);
    expect([...new Set(deadSources)].sort()).toEqual(invalid);

    for (const worker of workers) expect(await worker.stop()).toBe(0);
  });

  /**
   * A slow dependency is not a dead member: ClickHouse frozen for 60 s (FAULT_CLICKHOUSE_PAUSE_SECONDS
   * sets another length, e.g. 300 for the five-minute run), then Redis shut down and started again,
   * then a broker frozen for 15 s, with invalid messages mixed in. Batches wait (heartbeating) and
   * go on; no worker exits; sessions equal recompute; each invalid message has one dead letter.
   */
  it('rides out ClickHouse frozen, Redis restarted and a broker frozen, with hostile messages mixed in', async () => {
    const pauseMs = Number(process.env.FAULT_CLICKHOUSE_PAUSE_SECONDS ?? 60) * 1000;
    const topic = uniqueName('slowdeps');
    const deadLetter = `${topic}_dlq`;
    const database = uniqueName('slowdeps');
    const groupId = uniqueName('slowdeps_group');
    await migrate(admin, { database });
    await createTopics(topic, deadLetter);
    const clickhouse = new URL((await getClickHouse()).url);
    const chProxy = new TcpProxy(clickhouse.hostname, Number(clickhouse.port));
    await chProxy.open();
    const redis = new PrivateRedis(await pickPort(26379), dir);
    await redis.start();
    try {
      const env = await workerEnv({
        topic,
        groupId,
        redisPrefix: newRedisPrefix('slowdeps'),
        database,
        deadLetterTopic: deadLetter,
        extra: {
          KAFKA_BROKERS: cluster.brokers.join(','),
          KAFKA_CREATE_TOPICS: 'false',
          REDIS_URL: redis.url,
          CLICKHOUSE_URL: `http://127.0.0.1:${chProxy.port}`,
          LOG_LEVEL: 'info',
        },
      });
      const pool = [new WorkerProcess(env), new WorkerProcess(env)];
      workers.push(...pool);
      await Promise.all(pool.map((w) => w.ready(120_000)));

      const events: RawEvent[] = [
        ...generateTraffic({ users: 150, startMs: Date.parse('2024-08-01T00:00:00Z'), spanMs: 4 * 3_600_000, duplicateRate: 0.02, disorderMs: 60_000, seed: 23, idPrefix: 'sd-' }),
      ];
      const messages: Message[] = [];
      events.forEach((event, i) => {
        messages.push({ key: userKeyOfRaw(event), value: JSON.stringify(event) });
        if (i % 300 === 0) messages.push({ key: `hostile-${i}`, value: HOSTILE[(i / 300) % HOSTILE.length] as string });
      });
      const streamMs = pauseMs + 60_000;
      const producer = pacedProducer(kafka, topic, messages, Math.ceil(messages.length / (streamMs / 1000)));

      await sleep(5_000);
      const pausedAt = Date.now();
      chProxy.pause();
      await sleep(pauseMs);
      chProxy.resume();
      await sleep(10_000);
      // Waiting on ClickHouse is no reason to rebuild a consumer (a new one would wait the same,
      // and every rebuild rebalances the pool): none was, during the freeze or just after it.
      expect(pool.flatMap((w) => rebuildsSince(w.output, pausedAt))).toEqual([]);
      await redis.shutdown();
      await sleep(5_000);
      await redis.start();
      await sleep(10_000);
      const coordinator = await groupCoordinator(kafka, groupId);
      cluster.signal(coordinator, 'SIGSTOP');
      await sleep(15_000);
      cluster.signal(coordinator, 'SIGCONT');
      await producer.done;

      const log = await wholeTopic(kafka, topic);
      const inLog = new Set(log.filter((m) => !HOSTILE.includes(m.value)).map((m) => (JSON.parse(m.value) as { event_id: string }).event_id));
      const expected = await recomputeRecords(events.filter((e) => inLog.has(String(e.event_id))));
      await waitForSessions(admin, database, expected, 240_000, () => pool.map((w) => w.output.slice(-2000)).join('\n---\n'));
      for (const worker of pool) {
        expect(worker.child.exitCode).toBeNull();
        expect(worker.output).not.toContain(LAST_RESORT_MESSAGE);
      }
      const invalid = log
        .filter((m) => HOSTILE.includes(m.value))
        .map((m) => `${m.partition}:${m.offset}`)
        .sort();
      const dead = await readTopic(kafka, deadLetter, invalid.length, 60_000);
      expect([...new Set(dead.map((m) => `${m.headers['x-sessionizer-source-partition']}:${m.headers['x-sessionizer-source-offset']}`))].sort()).toEqual(invalid);
      for (const worker of pool) expect(await worker.stop()).toBe(0);
    } finally {
      chProxy.resume();
      await chProxy.cut();
      redis.kill();
    }
  });

  /**
   * The collector under a flood and `produce` fed through a pipe, each across a broker SIGKILL:
   * every request is answered 200 or 503 (with Retry-After), every event answered 200 is on the
   * topic, the collector accepts again within 20 s, and `produce` ends with exit 0 and every line
   * on the topic.
   */
  it('keeps the collector and produce answering through a broker SIGKILL', async () => {
    const topic = uniqueName('failover_collect');
    const kadmin = kafka.admin();
    await kadmin.connect();
    await kadmin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '2' }] }] });
    await kadmin.disconnect();
    const log = createLogger('warn', new Writable({ write: (_chunk, _enc, done) => done() }));
    const config = loadConfig({ KAFKA_BROKERS: cluster.brokers.join(','), KAFKA_TOPICS: topic });
    const redisPrefix = newRedisPrefix('failover_collect');
    const running = await startCollector(createKafka(config.kafka, log), redisPrefix, { topic, retryAfterSeconds: 1, rateLimit: { windowMs: 60_000, perKey: 0, perIp: 0 } });
    try {
      const accepted = new Set<string>();
      const statuses = new Map<number, number>();
      const acceptedAt: number[] = [];
      let missingRetryAfter = 0;
      let next = 0;
      let stop = false;
      const client = async () => {
        while (!stop) {
          const ids = Array.from({ length: 10 }, () => `fc-${next++}`);
          const body = JSON.stringify({ batch: ids.map((id) => ({ type: 'track', event: 'Flood', messageId: id, anonymousId: `v-${id}`, timestamp: new Date().toISOString() })) });
          const res = await fetch(`${running.url}/v1/batch`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body });
          await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 200) {
            for (const id of ids) accepted.add(id);
            acceptedAt.push(Date.now());
          }
          if (res.status === 503) {
            if (!res.headers.get('retry-after')) missingRetryAfter += 1;
            await sleep(200);
          }
        }
      };
      const clients = Array.from({ length: 16 }, client);
      await sleep(3_000);
      const victim = (await partitionLeaders(kafka, topic)).get(0) as number;
      const killedAt = Date.now();
      cluster.signal(victim, 'SIGKILL');
      await sleep(25_000);
      stop = true;
      await Promise.all(clients);
      await cluster.startNode(victim);

      expect([...statuses.keys()].filter((status) => status !== 200 && status !== 503)).toEqual([]);
      expect(missingRetryAfter).toBe(0);
      // Accepting again within 20 s: no pause between accepted requests after the kill is longer.
      const after = [killedAt, ...acceptedAt.filter((t) => t >= killedAt)];
      const longestPause = Math.max(...after.slice(1).map((t, i) => t - (after[i] as number)));
      console.log(`collector: ${accepted.size} events accepted, statuses ${JSON.stringify(Object.fromEntries(statuses))}; longest time without a 200 after the kill: ${longestPause} ms`);
      expect(after.length).toBeGreaterThan(1);
      expect(longestPause).toBeLessThanOrEqual(RECOVERY_LIMIT_MS);
      const onTopic = new Set((await readTopic(kafka, topic, accepted.size, 60_000)).map((m) => (JSON.parse(m.value) as { event_id: string }).event_id));
      expect([...accepted].filter((id) => !onTopic.has(id))).toEqual([]);
    } finally {
      await running.collector.stop();
    }

    // produce, fed through a pipe for ~15 s, with a broker killed in the middle.
    const produceTopic = uniqueName('failover_produce');
    const padmin = kafka.admin();
    await padmin.connect();
    await padmin.createTopics({ waitForLeaders: true, topics: [{ topic: produceTopic, numPartitions: PARTITIONS, replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '2' }] }] });
    await padmin.disconnect();
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(REPO, 'src', 'cli.ts'), 'produce', '--input', '-'], {
      cwd: REPO,
      env: { ...process.env, KAFKA_BROKERS: cluster.brokers.join(','), KAFKA_TOPICS: produceTopic },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    child.stdin.on('error', () => undefined); // an early exit is reported by the exit code below
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const lines = 3_000;
    let killed = 0;
    for (let i = 0; i < lines; i++) {
      child.stdin.write(`${JSON.stringify({ event_id: `p-${i}`, type: 'track', timestamp: Date.now(), anonymous_id: `pv-${i % 97}` })}\n`);
      if (i % 200 === 199) await sleep(1_000);
      if (i === 1_500) {
        killed = (await partitionLeaders(kafka, produceTopic)).get(0) as number;
        cluster.signal(killed, 'SIGKILL');
      }
    }
    child.stdin.end();
    const code = await exited;
    await cluster.startNode(killed);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const produced = new Set((await readTopic(kafka, produceTopic, lines, 60_000)).map((m) => (JSON.parse(m.value) as { event_id: string }).event_id));
    expect(produced.size).toBe(lines);
  });

  async function eventIds(client: ClickHouseClient, database: string): Promise<Set<string>> {
    const result = await client.query({ query: `SELECT DISTINCT event_id FROM ${database}.events`, format: 'JSONEachRow' });
    return new Set(((await result.json()) as Array<{ event_id: string }>).map((r) => r.event_id));
  }

  /** The event topic with LogAppendTime (so a message's timestamp is when it became readable) and its dead-letter topic. */
  async function createTopics(topic: string, deadLetter: string): Promise<void> {
    const kadmin = kafka.admin();
    await kadmin.connect();
    try {
      const configEntries = [{ name: 'min.insync.replicas', value: '2' }];
      await kadmin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic, numPartitions: PARTITIONS, replicationFactor: 3, configEntries: [...configEntries, { name: 'message.timestamp.type', value: 'LogAppendTime' }] },
          { topic: deadLetter, numPartitions: 2, replicationFactor: 3, configEntries },
        ],
      });
    } finally {
      await kadmin.disconnect();
    }
  }
});

/** The worker's "kafka consumer rebuilt" log lines stamped at or after `since`. */
function rebuildsSince(output: string, since: number): string[] {
  return output.split('\n').filter((line) => {
    if (!line.includes('kafka consumer rebuilt')) return false;
    try {
      return Date.parse((JSON.parse(line) as { time: string }).time) >= since;
    } catch {
      return false;
    }
  });
}
