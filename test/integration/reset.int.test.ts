/**
 * `sessionizer reset` against a real worker's state: --yes refused while the group has a member,
 * --dry-run allowed then (it only reads) and changing nothing; --yes --offsets deletes exactly the topic's keys (a repair log's
 * included; not a neighbour topic's) and moves the group's offsets back to the start.
 */
import { runReset } from '../../src/commands/reset-command';
import { runMigrate } from '../../src/commands/migrate-command';
import { loadConfig } from '../../src/config';
import { encodeIdleRecord } from '../../src/state/codec';
import { PartitionKeys } from '../../src/state/keys';
import { createKafka, createRedis, deleteRedisKeys, getClickHouse, newRedisPrefix, uniqueName, useTestDatabase } from '../support';
import { createTopic, produce, waitFor, WorkerProcess, workerEnv } from '../support/worker-harness';

const db = useTestDatabase('reset');

it('deletes the pool state and rewinds offsets only when told, and only for the stopped group', async () => {
  const clickhouse = await getClickHouse();
  await runMigrate({ config: loadConfig({ CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_DATABASE: db.name }), log: () => undefined });
  const kafka = await createKafka();
  const topic = uniqueName('reset');
  await createTopic(kafka, topic, 2);
  const prefix = newRedisPrefix('reset').slice(0, -1);
  const groupId = uniqueName('reset_group');
  const env = await workerEnv({ topic, groupId, redisPrefix: prefix, database: db.name });
  const redis = createRedis();
  const neighbour = `{${prefix}:${topic}x:0}:meta`;
  await redis.hset(neighbour, 'epoch', '1');
  const worker = new WorkerProcess(env);
  try {
    await worker.ready();
    const now = Date.now();
    await produce(kafka, topic, [
      { event_id: 'r1', type: 'page_view', timestamp: now, anonymous_id: 'reset-a' },
      { event_id: 'r2', type: 'page_view', timestamp: now, anonymous_id: 'reset-b' },
    ]);
    await waitFor(async () => (await redis.keys(`{${prefix}:${topic}:*}:u:*`)).length === 2, 30_000, () => worker.output.slice(-2000));
    expect(await worker.stop()).toBe(0);

    const config = loadConfig({ ...env, LOG_LEVEL: 'warn' });
    const out: string[] = [];
    const write = (text: string) => void out.push(text);

    // A member in the group (a worker that is still running): refused.
    const member = kafka.consumer({ groupId, maxWaitTimeInMs: 250, heartbeatInterval: 500 });
    await member.connect();
    await member.subscribe({ topics: [topic] });
    await member.run({ eachMessage: async () => undefined });
    await waitFor(async () => ((await kafka.admin().describeGroups([groupId])).groups[0]?.members.length ?? 0) > 0, 20_000);
    await expect(runReset({ yes: true }, { config, write })).rejects.toThrow(/consumer group .* has 1 active member\(s\).*stop every worker/);
    // A dry run only reads: it works while the pool runs, and says what --yes will need.
    const keysWhileRunning = (await redis.keys(`{${prefix}:${topic}:*`)).sort();
    const whileRunning = await runReset({ dryRun: true }, { config, write });
    expect(whileRunning.executed).toBe(false);
    expect(whileRunning.plan.partitions.reduce((n, p) => n + p.users, 0)).toBe(2);
    expect(out.join('')).toMatch(/reset: consumer group .* has 1 active member\(s\) .*: stop every worker of the pool before --yes/);
    expect((await redis.keys(`{${prefix}:${topic}:*`)).sort()).toEqual(keysWhileRunning);
    await member.disconnect();

    await expect(runReset({}, { config, write })).rejects.toThrow(/--dry-run .* --yes/);

    // A pending repair's log (the worker writes it after Redis lost commits): its keys carry the
    // partition's hash tag like every other, so the reset finds and deletes them too.
    const repairKeys = new PartitionKeys(prefix, topic, 0);
    await redis.zadd(repairKeys.repair, 0, 'reset-a');
    await redis.hset(repairKeys.repairBase, 'reset-a\u0000', '');
    await redis.hset(repairKeys.repairWrites, 'reset-a\u0000s1', '');
    // Idle records live in buckets under the same tag: counted as users' state, and deleted.
    await redis.hset(`${repairKeys.idle}0`, 'reset-c', encodeIdleRecord({ count: 1, lastId: 'x', expiresAtMinute: 2 ** 31 }));
    const keysBefore = (await redis.keys(`{${prefix}:${topic}:*`)).sort();
    expect(keysBefore).toEqual(expect.arrayContaining([repairKeys.repair, repairKeys.repairBase, repairKeys.repairWrites, `${repairKeys.idle}0`]));
    const dry = await runReset({ dryRun: true, offsets: true }, { config, write });
    expect(dry.executed).toBe(false);
    expect(dry.plan.partitions.reduce((n, p) => n + p.users, 0)).toBe(3);
    expect(dry.plan.offsets.length).toBeGreaterThan(0);
    expect((await redis.keys(`{${prefix}:${topic}:*`)).sort()).toEqual(keysBefore);
    expect(out.join('')).toContain('dry run, nothing changed');

    const done = await runReset({ yes: true, offsets: true }, { config, write });
    expect(done.keysDeleted).toBe(keysBefore.length);
    expect(await redis.keys(`{${prefix}:${topic}:*`)).toEqual([]);
    expect(await redis.exists(neighbour)).toBe(1);
    const admin = kafka.admin();
    await admin.connect();
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const lows = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o.low]));
    await admin.disconnect();
    for (const p of offsets?.partitions ?? []) expect(p.offset).toBe(lows.get(p.partition));
  } finally {
    await worker.kill();
    await deleteRedisKeys(redis, prefix);
    redis.disconnect();
  }
}, 180_000);
