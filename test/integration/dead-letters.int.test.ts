/**
 * `sessionizer dead-letters list|replay` on what a real worker dead-lettered: reasons and
 * sources listed (table, NDJSON), the topic only read (no committed group left behind), and the
 * selected messages sent back unchanged to their source topic.
 */
import { runDeadLettersList, runDeadLettersReplay, REPLAYED_FROM_HEADER } from '../../src/commands/dead-letters-command';
import { runMigrate } from '../../src/commands/migrate-command';
import { loadConfig } from '../../src/config';
import { runCli } from '../support/cli';
import { readTopic } from '../support/read-topic';
import { createKafka, createRedis, deleteRedisKeys, getClickHouse, newRedisPrefix, uniqueName, useTestDatabase } from '../support';
import { createTopic, produce, waitFor, WorkerProcess, workerEnv } from '../support/worker-harness';

const db = useTestDatabase('deadletters');

it('lists dead letters with reason and source, and replays the selected ones to their source topic', async () => {
  const clickhouse = await getClickHouse();
  await runMigrate({ config: loadConfig({ CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_DATABASE: db.name }), log: () => undefined });
  const kafka = await createKafka();
  const topic = uniqueName('dl');
  await createTopic(kafka, topic, 2);
  await createTopic(kafka, `${topic}_dlq`, 2);
  const prefix = newRedisPrefix('dl').slice(0, -1);
  const env = await workerEnv({ topic, groupId: uniqueName('dl_group'), redisPrefix: prefix, database: db.name });
  const worker = new WorkerProcess(env);
  const redis = createRedis();
  try {
    await worker.ready();
    await produce(kafka, topic, [
      { key: 'a', value: '{"event_id":"bad-ts","type":"page_view","timestamp":"yesterday","anonymous_id":"a"}' },
      { key: 'b', value: 'not json \u001b[2J' },
      { event_id: 'fine', type: 'page_view', timestamp: Date.now(), anonymous_id: 'c' },
    ]);
    const config = loadConfig({ ...env, LOG_LEVEL: 'warn' });
    let listed: Awaited<ReturnType<typeof runDeadLettersList>> = [];
    await waitFor(async () => (listed = await runDeadLettersList({ format: 'ndjson' }, { config, write: () => undefined })).length === 2, 30_000, () => worker.output.slice(-2000));
    // Events that name no site, from a topic tied to none: site default.
    expect(listed.map((l) => l.site)).toEqual(['default', 'default']);
    expect(await runDeadLettersList({ format: 'ndjson', site: 'default' }, { config, write: () => undefined })).toHaveLength(2);
    expect(await runDeadLettersList({ format: 'ndjson', site: 'shop' }, { config, write: () => undefined })).toEqual([]);
    const badTs = listed.find((l) => l.key === 'a');
    expect(badTs).toMatchObject({ field: 'timestamp', source: { topic }, value: expect.stringContaining('"bad-ts"') });
    expect(badTs?.reason).toMatch(/timestamp/);

    // The table, from the command line: one row per letter, control characters escaped.
    const table = await runCli(['dead-letters', 'list'], { env: { ...env, LOG_LEVEL: 'warn' } });
    expect(table.code).toBe(0);
    const rows = table.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^AT\s+TIME\s+SOURCE\s+FIELD\s+REASON\s+VALUE/);
    expect(rows).toHaveLength(3);
    expect(table.stdout).toContain('not json \\u001b[2J');
    expect(table.stdout).not.toContain('\u001b');

    // Reading created no lasting consumer group.
    const admin = kafka.admin();
    await admin.connect();
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId);
    await admin.disconnect();
    expect(groups.filter((g) => g.startsWith(`${env.KAFKA_GROUP_ID}-reader-`))).toEqual([]);

    await expect(runDeadLettersReplay({ yes: true }, { config })).rejects.toThrow(/--at, --reason, --source-topic or --site, or say --all/);
    const at = `${badTs?.partition}:${badTs?.offset}`;
    const dry = await runDeadLettersReplay({ at: [at], dryRun: true }, { config, write: () => undefined });
    expect(dry).toMatchObject({ replayed: 0, selected: [{ key: 'a' }] });
    await worker.stop();
    const replayTarget = uniqueName('dl_replay');
    await createTopic(kafka, replayTarget, 1);
    const sent = await runDeadLettersReplay({ at: [at], yes: true, to: replayTarget }, { config, write: () => undefined });
    expect(sent.replayed).toBe(1);
    const [message] = await readTopic(kafka, replayTarget, 1);
    expect(message).toMatchObject({ key: 'a', value: badTs?.value });
    expect(message?.headers[REPLAYED_FROM_HEADER]).toBe(`${topic}_dlq:${at}`);
    expect(Object.keys(message?.headers ?? {}).filter((h) => h.startsWith('x-sessionizer-error'))).toEqual([]);
  } finally {
    await worker.kill();
    await deleteRedisKeys(redis, prefix);
    redis.disconnect();
  }
}, 180_000);
