/**
 * A second local run, as it used to go wrong: the worker's state in Redis was made from one Kafka
 * log, and the topic is now a new log (re-created, or Kafka started afresh with Redis kept). The
 * worker must stop with one human line on stderr naming the partition and the `reset` command
 * that starts over — not only a JSON log line — and `reset` as named must then let it run.
 */
import { runMigrate } from '../../src/commands/migrate-command';
import { runReset } from '../../src/commands/reset-command';
import { loadConfig } from '../../src/config';
import { runCli } from '../support/cli';
import { createKafka, createRedis, deleteRedisKeys, getClickHouse, newRedisPrefix, uniqueName, useTestDatabase } from '../support';
import { createTopic, produce, waitFor, WorkerProcess, workerEnv } from '../support/worker-harness';

const db = useTestDatabase('second_run');

it('a state of another log stops the worker with one line naming the partition and the reset command', async () => {
  const clickhouse = await getClickHouse();
  await runMigrate({ config: loadConfig({ CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_DATABASE: db.name }), log: () => undefined });
  const kafka = await createKafka();
  const topic = uniqueName('second_run');
  await createTopic(kafka, topic, 1);
  const prefix = newRedisPrefix('second_run').slice(0, -1);
  const env = { ...(await workerEnv({ topic, groupId: uniqueName('second_run_group'), redisPrefix: prefix, database: db.name })), HTTP_PORT: '0' };
  const redis = createRedis();
  const now = Date.now();
  const event = (id: string, user: string) => ({ event_id: id, type: 'page_view', timestamp: now, anonymous_id: user });
  try {
    // The first run: a few events applied, the state in Redis.
    const first = new WorkerProcess(env);
    try {
      await first.ready();
      await produce(kafka, topic, [event('a1', 'second-a'), event('b1', 'second-b'), event('a2', 'second-a')]);
      await waitFor(async () => (await redis.hget(`{${prefix}:${topic}:0}:meta`, 'offset')) === '2', 60_000, () => first.output.slice(-2000));
    } finally {
      expect(await first.stop()).toBe(0);
    }

    // A new log under the same name; Redis keeps the old state.
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] });
    await admin.disconnect();
    await waitFor(async () => createTopic(kafka, topic, 1).then(() => true, () => false), 30_000);
    await produce(kafka, topic, [event('c1', 'second-c')]);

    const second = await runCli(['worker'], { env, timeoutMs: 120_000 });
    expect(second.code).toBe(1);
    const lines = second.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^sessionizer: worker stopped: partition ${topic}\\[0\\]: the worker state in Redis \\(applied offset 2\\) belongs to another Kafka log: .*` +
            `run "sessionizer reset --topics ${topic} --dry-run", then the same with --yes`,
        ),
      ),
    ]);
    // Found when the partition is claimed, not after waiting for the log to catch up (30 s).
    const timeOf = (msg: string) => Date.parse((JSON.parse(second.stdout.split('\n').find((line) => line.includes(`"msg":"${msg}`)) ?? '{}') as { time?: string }).time ?? '');
    const detectedMs = timeOf('worker gave up') - timeOf('partitions assigned');
    expect(detectedMs).toBeLessThan(10_000);
    process.stderr.write(`second-run: the worker stopped ${(second.ms / 1000).toFixed(1)} s after it started, ${(detectedMs / 1000).toFixed(1)} s after its assignment\n`);

    // The command it names starts over: the worker then runs on the new log.
    await runReset({ yes: true, topics: [topic] }, { config: loadConfig({ ...env, LOG_LEVEL: 'warn' }), write: () => undefined });
    const third = new WorkerProcess(env);
    try {
      await third.ready();
      await waitFor(async () => (await redis.hget(`{${prefix}:${topic}:0}:meta`, 'offset')) === '0', 60_000, () => third.output.slice(-2000));
    } finally {
      expect(await third.stop()).toBe(0);
    }
  } finally {
    await deleteRedisKeys(redis, prefix);
    redis.disconnect();
  }
}, 300_000);
