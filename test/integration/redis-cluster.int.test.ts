/**
 * The worker on a Redis Cluster (REDIS_CLUSTER_NODES): a private cluster of 3 masters + 3
 * replicas from Debian's redis-server, started by this file on free ports (about 3 s) and
 * stopped after it. The shared Redis on 6379 is not touched.
 *
 * - Every Lua script's keys are in one slot: CLUSTER KEYSLOT agrees for every key a partition
 *   uses, and each script runs through the stores on the cluster (a CROSSSLOT would fail it).
 * - A worker on the cluster, with slots of its partitions resharded to another master in the
 *   middle of the stream (MOVED/ASK/TRYAGAIN for the client to follow), equals recompute, and
 *   recalculation finds the worker's partitions on every master (SCAN of each).
 * - WAIT: the store's `waitForReplicas` gets the replica's acknowledgement from the node that owns
 *   the partition, and fails in time when more replicas are asked for than exist.
 * - A master SIGKILLed mid-stream: its replica takes over (cluster-node-timeout 2 s), the worker
 *   carries on, and the sessions equal recompute. Runs last: it leaves the cluster a master short.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { startRedisCluster, type LocalRedisCluster } from '../../deploy/local/redis-cluster';
import { migrate } from '../../src/clickhouse/migrations';
import { loadConfig } from '../../src/config';
import { applyEvent, newKeyState } from '../../src/engine/engine';
import { ReplicaAckError } from '../../src/errors';
import { parseSessionEvent } from '../../src/events/parse-event';
import { generateTraffic, type RawEvent } from '../../src/loadgen/traffic';
import { PartitionKeys } from '../../src/state/keys';
import { PartitionStateStore } from '../../src/state/partition-state-store';
import { createRedisClient, isCluster, scanKeys } from '../../src/state/redis-client';
import { defineStateCommands, type StateCommands } from '../../src/state/script-loader';
import { UserCounterStore } from '../../src/state/user-counters';
import { createClickHouseClient, createKafka, newRedisPrefix, uniqueName } from '../support';
import { WorkerProcess, createTopic, produce, recomputeRecords, waitFor, waitForSessions, workerEnv } from '../support/worker-harness';

jest.setTimeout(180_000);

const PARTITIONS = 4;
const TTL = { activeSeconds: 3600, idleSeconds: 7200 };

describe('Redis Cluster', () => {
  let cluster: LocalRedisCluster;
  let dir: string;
  let redis: Redis & StateCommands;
  let kafka: Kafka;
  let admin: ClickHouseClient;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sessionizer-redis-cluster-'));
    const started = Date.now();
    cluster = await startRedisCluster({ dir, basePort: 27101 });
    console.log(`Redis cluster up in ${Date.now() - started} ms on ${cluster.addresses.join(',')}`);
    redis = defineStateCommands(createRedisClient(loadConfig({ REDIS_CLUSTER_NODES: cluster.addresses.join(',') }).redis, { maxRetriesPerRequest: 3 }));
    kafka = await createKafka('redis-cluster-test');
    admin = await createClickHouseClient();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill()));
  });
  afterAll(async () => {
    redis?.disconnect();
    await admin?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One plain connection to a node, for CLUSTER commands about the cluster itself. */
  async function onNode<T>(port: number, work: (node: Redis) => Promise<T>): Promise<T> {
    const node = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    try {
      return await work(node);
    } finally {
      node.disconnect();
    }
  }

  it('is a cluster client, and puts every key of a partition, whatever the user key, in one slot (CLUSTER KEYSLOT)', async () => {
    expect(isCluster(redis)).toBe(true);
    const userKeys = ['a', 'anon-1', 'x{y}z', '}{', '{other-tag}', 'ключ', 'u:with:colons', ''];
    await onNode(cluster.nodes[0]?.port as number, async (node) => {
      for (const [prefix, topic, partition] of [['sz', 'events', 0], ['sz', 'events', 11], ['p:x', 'web.events', 3]] as const) {
        const keys = new PartitionKeys(prefix, topic, partition);
        const all = [keys.meta, keys.closeDeadlines, keys.forgetDeadlines, keys.outbox, keys.repair, keys.repairBase, keys.repairWrites, ...userKeys.map((u) => keys.user(u))];
        const slots = await Promise.all(all.map((key) => node.cluster('KEYSLOT', key)));
        expect({ partition: `${prefix}/${topic}/${partition}`, slots: new Set(slots).size }).toEqual({ partition: `${prefix}/${topic}/${partition}`, slots: 1 });
      }
      // The check can fail: two partitions of a topic are (here) in different slots.
      const [a, b] = [new PartitionKeys('sz', 'events', 0).meta, new PartitionKeys('sz', 'events', 1).meta];
      expect(await node.cluster('KEYSLOT', a)).not.toBe(await node.cluster('KEYSLOT', b));
    });
  });

  it('runs every Lua script on the cluster through the stores (a key outside the slot would be CROSSSLOT)', async () => {
    const prefix = newRedisPrefix('cluster_scripts');
    const store = new PartitionStateStore(redis, prefix, 'events', 5, TTL, { replicas: 1, timeoutMs: 2000 });
    const claim = await store.claim(); // claimPartition
    const state = newKeyState('user-1');
    const event = parseSessionEvent(JSON.stringify({ event_id: 'e1', type: 'page_view', timestamp: '2024-05-01T10:00:00Z', anonymous_id: 'user-1' }));
    if (event instanceof Error) throw event;
    applyEvent(state, event, { timeoutMs: 60_000, latenessMs: 60_000 }, Date.parse('2024-05-01T10:00:00Z'));
    const other = newKeyState('{user-2}');
    const idle = { ...newKeyState('user-3'), forgottenCount: 2, forgottenLastId: 'last' }; // an idle record, in a bucket
    const seq = await store.commit({
      epoch: claim.epoch,
      rev: claim.rev,
      offset: '10',
      watermark: 1,
      payload: Buffer.from('[]'),
      commitId: 'c1',
      fingerprint: '10:abc',
      updates: [{ state, closeAt: 100, forgetAt: 200 }, { state: other, closeAt: null, forgetAt: null }, { state: idle, closeAt: null, forgetAt: null }],
    }); // commitBatch
    expect(seq).toBe(1);
    expect(await store.waitForReplicas()).toBe(1);
    await store.ack(claim.epoch, seq); // ackOutbox
    expect(await store.markRepair(claim.epoch, 10n, 0)).toEqual({ until: 10n, reachMs: 0 }); // markRepair
    await store.noteRepair(new Map([['user-1', []]]), ['user-1'], []);
    expect((await store.repairLog()).users).toEqual(['user-1']);
    await store.clearRepair(claim.epoch); // clearRepair
    expect((await store.loadStates(['user-1'])).get('user-1')?.userKey).toBe('user-1');
    expect((await store.loadStates(['user-3'])).get('user-3')).toMatchObject({ forgottenCount: 2, forgottenLastId: 'last' }); // readIdle
    expect(await store.sweepIdle(claim.epoch)).toBe(0); // sweepIdle

    const counters = new UserCounterStore(redis, prefix, ['events'], 7200);
    const [partition] = await counters.partitions();
    expect(partition).toMatchObject({ partition: 5 });
    const located = await counters.locate(['user-1']);
    const found = located.get('user-1')?.[0];
    expect(found).toBeDefined();
    expect(await counters.adjust(partition as never, [{ userKey: 'user-1', expected: found?.stored ?? null, count: 3, lastId: 'x', due: true }])).toEqual([]); // adjustUserCounters

    // A batch whose keys span two partitions is refused by the cluster: the slot rule is real.
    const elsewhere = new PartitionKeys(prefix, 'events', 6);
    await expect(redis.commitBatch(5, store.keys.meta, store.keys.closeDeadlines, store.keys.forgetDeadlines, store.keys.outbox, elsewhere.user('z'), '1', '0', '1', '1', '', 'c1', '', 'z', '{}', '60', '', '')).rejects.toThrow(/CROSSSLOT/);
  });

  it('WAIT: asking for more replicas than the node has fails after the timeout instead of committing offsets', async () => {
    const store = new PartitionStateStore(redis, newRedisPrefix('cluster_wait'), 'events', 1, TTL, { replicas: 2, timeoutMs: 300 });
    const claim = await store.claim();
    await store.commit({ epoch: claim.epoch, rev: claim.rev, offset: '1', watermark: 1, payload: Buffer.alloc(0), commitId: 'c1', fingerprint: '', updates: [] });
    const started = Date.now();
    const error = await store.waitForReplicas().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ReplicaAckError);
    expect(error).toMatchObject({ retriable: true, context: { acknowledged: 1, required: 2 } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const off = new PartitionStateStore(redis, newRedisPrefix('cluster_wait'), 'events', 1, TTL);
    expect(await off.waitForReplicas()).toBe(0);
  });

  it('a worker on the cluster, with its partitions’ slots resharded mid-stream, equals recompute', async () => {
    const topic = uniqueName('rcluster');
    const database = uniqueName('rcluster');
    const prefix = newRedisPrefix('rcluster');
    await createTopic(kafka, topic, PARTITIONS);
    await migrate(admin, { database });
    const env = await workerEnv({ topic, groupId: uniqueName('rcluster_group'), redisPrefix: prefix, database, extra: { REDIS_CLUSTER_NODES: cluster.addresses.join(','), REDIS_WAIT_REPLICAS: '1' } });
    const events: RawEvent[] = [
      ...generateTraffic({ users: 600, startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 6 * 3_600_000, duplicateRate: 0.02, disorderMs: 60_000, seed: 41, idPrefix: 'rc-' }),
    ];
    const expected = await recomputeRecords(events);
    const worker = new WorkerProcess(env);
    workers.push(worker);
    await worker.ready();
    const half = Math.floor(events.length / 2);
    await produce(kafka, topic, events.slice(0, half));
    await waitFor(async () => (await scanKeys(redis, `{${prefix}:*}:meta`)).length === PARTITIONS, 60_000, () => worker.output.slice(-3000));

    // Move every partition's slot to another master while the worker writes: keys migrate one by
    // one (ASK, TRYAGAIN for multi-key scripts), then the slot's owner changes (MOVED).
    const moved = await reshardPartitions(prefix, topic);
    await produce(kafka, topic, events.slice(half));
    await moved;
    await waitForSessions(admin, database, expected, 120_000, () => worker.output);

    // Recalculation's view of the worker's state: all partitions, found on whichever master holds them.
    const counters = new UserCounterStore(redis, prefix, [topic], 7200);
    expect((await counters.partitions()).map((p) => p.partition)).toEqual([0, 1, 2, 3]);
    expect(await worker.stop()).toBe(0);
    expect(worker.output).not.toMatch(/CROSSSLOT/);
  });

  it('a master SIGKILLed mid-stream: its replica is promoted, the worker goes on, and the sessions equal recompute', async () => {
    const topic = uniqueName('rfailover');
    const database = uniqueName('rfailover');
    const prefix = newRedisPrefix('rfailover');
    await createTopic(kafka, topic, PARTITIONS);
    await migrate(admin, { database });
    // No WAIT here: once its master is killed, the promoted replica has no replica of its own, so
    // REDIS_WAIT_REPLICAS=1 would (rightly) hold the partition until one is back. What keeps the
    // count exact without it is the worker's claim: a state behind the committed offset (the
    // replica missed the last commits) is replayed from its own offset and its rows corrected.
    const env = await workerEnv({ topic, groupId: uniqueName('rfailover_group'), redisPrefix: prefix, database, extra: { REDIS_CLUSTER_NODES: cluster.addresses.join(',') } });
    const events: RawEvent[] = [
      ...generateTraffic({ users: 600, startMs: Date.parse('2024-06-01T00:00:00Z'), spanMs: 6 * 3_600_000, duplicateRate: 0.02, disorderMs: 60_000, seed: 42, idPrefix: 'rf-' }),
    ];
    const expected = await recomputeRecords(events);
    const worker = new WorkerProcess(env);
    workers.push(worker);
    await worker.ready();
    const third = Math.floor(events.length / 3);
    await produce(kafka, topic, events.slice(0, third));
    await waitFor(async () => (await scanKeys(redis, `{${prefix}:*}:meta`)).length === PARTITIONS, 60_000, () => worker.output.slice(-3000));

    // The master holding partition 0's state dies while the rest of the stream arrives.
    const { victim, replicaPort } = await onNode(cluster.nodes[0]?.port as number, async (node) => {
      const slot = (await node.cluster('KEYSLOT', new PartitionKeys(prefix, topic, 0).meta)) as number;
      const layout = (await node.cluster('SLOTS')) as unknown as Array<[number, number, [string, number, string], [string, number, string]]>;
      const range = layout.find(([from, to]) => slot >= from && slot <= to);
      return { victim: cluster.nodes.find((n) => n.port === range?.[2][1]), replicaPort: range?.[3][1] as number };
    });
    expect(victim).toBeDefined();
    const sending = produce(kafka, topic, events.slice(third));
    await new Promise((r) => setTimeout(r, 300));
    process.kill(victim?.pid as number, 'SIGKILL');
    const killedAt = Date.now();
    await waitFor(async () => (await onNode(replicaPort, (node) => node.role()))[0] === 'master', 30_000);
    console.log(`replica on ${replicaPort} promoted ${Date.now() - killedAt} ms after the master was killed`);
    await sending;
    await waitForSessions(admin, database, expected, 120_000, () => worker.output);
    console.log(`sessions complete ${Date.now() - killedAt} ms after the kill; worker warnings:\n${worker.output.split('\n').filter((l) => /"level":(40|50)/.test(l)).slice(0, 8).map((l) => l.slice(0, 300)).join('\n')}`);
    expect(await worker.stop()).toBe(0);
  });

  /** Moves each partition's slot to the next master, one after the other. */
  async function reshardPartitions(prefix: string, topic: string): Promise<void> {
    const slots = await onNode(cluster.nodes[0]?.port as number, (node) =>
      Promise.all(Array.from({ length: PARTITIONS }, (_, p) => node.cluster('KEYSLOT', new PartitionKeys(prefix, topic, p).meta) as Promise<number>)),
    );
    const ownerOf = (slot: number) =>
      onNode(cluster.nodes[0]?.port as number, async (node) => {
        const layout = (await node.cluster('SLOTS')) as unknown as Array<[number, number, [string, number, string]]>;
        return layout.find(([from, to]) => slot >= from && slot <= to)?.[2][2];
      });
    for (const slot of new Set(slots)) {
      const before = await ownerOf(slot);
      await moveSlot(slot);
      expect(await ownerOf(slot)).not.toBe(before);
    }
  }

  /**
   * Moves one slot to another master as `redis-cli --cluster reshard` does (which cannot be told
   * which slot): target IMPORTING, source MIGRATING, MIGRATE the keys a few at a time, then the
   * slot's new owner announced to every master.
   */
  async function moveSlot(slot: number): Promise<void> {
    const port = cluster.nodes[0]?.port as number;
    const layout = await onNode(port, async (node) => (await node.cluster('SLOTS')) as unknown as Array<[number, number, [string, number, string], ...unknown[]]>);
    const source = layout.find(([from, to]) => slot >= from && slot <= to)?.[2] as [string, number, string];
    const masters = [...new Map(layout.map((m) => [m[2][2], m[2]])).values()];
    const target = masters[(masters.findIndex((m) => m[2] === source[2]) + 1) % masters.length] as [string, number, string];
    await onNode(target[1], (node) => node.cluster('SETSLOT', slot, 'IMPORTING', source[2]));
    await onNode(source[1], async (node) => {
      await node.cluster('SETSLOT', slot, 'MIGRATING', target[2]);
      for (;;) {
        const keys = (await node.cluster('GETKEYSINSLOT', slot, 20)) as string[];
        if (keys.length === 0) break;
        await node.migrate('127.0.0.1', target[1], '', 0, 5000, 'KEYS', ...keys);
        await new Promise((r) => setTimeout(r, 20)); // let the worker write in between: ASK and TRYAGAIN
      }
    });
    for (const m of masters) await onNode(m[1], (node) => node.cluster('SETSLOT', slot, 'NODE', target[2]));
  }
});
