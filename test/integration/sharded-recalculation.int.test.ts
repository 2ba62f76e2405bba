/**
 * `recompute --since D --sink clickhouse --shard I/N` against real ClickHouse and Redis: the same
 * stored events recalculated by one process (N = 1) into one database and by three processes at
 * once (shards 0/3, 1/3, 2/3) into another give exactly the same `sessions` — the same current
 * sessions and the same rows — and both equal `recompute` over the events. The shards split the
 * keys without overlap (their user counts add up to N = 1's) by ClickHouse's cityHash64, and the
 * second round, after late events that merge, split and renumber sessions, agrees again.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { toEventRow } from '../../src/clickhouse/event-row';
import { migrate } from '../../src/clickhouse/migrations';
import { ClickHouseSink } from '../../src/clickhouse/session-sink';
import { runRecalculation } from '../../src/commands/recompute-command';
import { loadConfig } from '../../src/config';
import { validateEvent } from '../../src/events/parse-event';
import { generateTraffic, type RawEvent } from '../../src/loadgen/traffic';
import type { RecalculationStats } from '../../src/recalc/recalculate';
import { createClickHouseClient, deleteRedisKeys, dropTestDatabase, getClickHouse, getRedisUrl, newRedisPrefix, uniqueName } from '../support';
import { currentSessions, recomputeRecords, withoutOpenFlag } from '../support/worker-harness';

jest.setTimeout(120_000);

const MINUTE = 60_000;
const t0 = Date.parse('2024-05-01T10:00:00Z');
const timeOf = (e: RawEvent) => (typeof e.timestamp === 'number' ? e.timestamp : Date.parse(String(e.timestamp)));

describe('recompute --since --sink clickhouse --shard I/N', () => {
  let admin: ClickHouseClient;
  let redis: Redis;
  const databases: string[] = [];
  const prefix = newRedisPrefix('shards');

  beforeAll(async () => {
    admin = await createClickHouseClient();
    redis = new Redis(getRedisUrl(), { maxRetriesPerRequest: 3 });
  });
  afterAll(async () => {
    for (const database of databases) await dropTestDatabase(admin, database);
    await deleteRedisKeys(redis, `{${prefix}`);
    await redis.quit();
    await admin.close();
  });

  async function database(name: string): Promise<{ database: string; env: Record<string, string> }> {
    const db = uniqueName(name);
    databases.push(db);
    await migrate(admin, { database: db });
    const clickhouse = await getClickHouse();
    const env = {
      REDIS_URL: getRedisUrl(),
      REDIS_KEY_PREFIX: prefix,
      KAFKA_TOPICS: uniqueName('shards_topic'),
      CLICKHOUSE_URL: clickhouse.url,
      CLICKHOUSE_USER: clickhouse.username,
      CLICKHOUSE_PASSWORD: clickhouse.password,
      CLICKHOUSE_DATABASE: db,
      SESSION_TIMEOUT_MINUTES: '1',
      ALLOWED_LATENESS_MINUTES: '10',
    };
    return { database: db, env };
  }

  /** Events stored as the worker stores them, in batches (an import: no Kafka coordinates). */
  async function store(db: string, events: readonly RawEvent[]): Promise<void> {
    const sink = new ClickHouseSink(admin, db);
    for (let i = 0; i < events.length; i += 2000) {
      const rows = events.slice(i, i + 2000).map((event) => {
        const raw = JSON.stringify(event);
        const parsed = validateEvent(JSON.parse(raw));
        if (!parsed.ok) throw parsed.error;
        return toEventRow(parsed.valid, raw);
      });
      await sink.insertEvents(rows, `${db}-${i}-${rows.length}-${rows[0]?.event_id}`);
    }
  }

  /**
   * What `sessions` holds, net of cancellations, whatever merges ran meanwhile: every written row
   * (version included) with its summed sign, and the daily roll-up the views built from them.
   */
  async function rows(db: string): Promise<unknown[]> {
    const result = await admin.query({
      query: `SELECT * EXCEPT sign, sum(sign) AS net FROM ${db}.sessions GROUP BY ALL HAVING net != 0 ORDER BY ALL`,
      format: 'JSONCompactEachRow',
    });
    const daily = await admin.query({
      query: `SELECT day, sum(sessions), sum(engaged_sessions), sum(duration_ms), sum(events) FROM ${db}.sessions_daily GROUP BY day ORDER BY day`,
      format: 'JSONCompactEachRow',
    });
    return [...(await result.json()), ...(await daily.json())];
  }

  /** One process, or N at once, as N pods of an Indexed Job run. */
  async function recalculate(env: Record<string, string>, sinceMs: number, shards: number): Promise<RecalculationStats[]> {
    const config = loadConfig(env);
    return Promise.all(
      Array.from({ length: shards }, (_, index) => runRecalculation(config, { sinceMs, pageUsers: 40, shard: shards > 1 ? { index, count: shards } : undefined })),
    );
  }

  it('gives with three shards exactly what one process gives, each key done once', async () => {
    const one = await database('shards_one');
    const three = await database('shards_three');
    const traffic = [...generateTraffic({ users: 240, startMs: t0, spanMs: 120 * MINUTE, timeoutMs: MINUTE, duplicateRate: 0.02, disorderMs: 20_000, seed: 14, idPrefix: 'sh-' })];
    await store(one.database, traffic);
    await store(three.database, traffic);

    const single = await recalculate(one.env, t0 - MINUTE, 1);
    const sharded = await recalculate(three.env, t0 - MINUTE, 3);
    const [whole] = single as [RecalculationStats];
    expect(whole.users).toBe(240);
    for (const stats of sharded) {
      // Each shard got a fair part of the keys (the hash spreads them), not all or none.
      expect(stats.users).toBeGreaterThan(40);
      expect(stats.users).toBeLessThan(120);
      expect(stats.totalUsers).toBe(stats.users);
      expect(stats).toMatchObject({ interrupted: false, unsettled: [] });
    }
    const sum = (key: 'users' | 'events' | 'sessions' | 'added' | 'rowsWritten') => sharded.reduce((n, s) => n + s[key], 0);
    expect([sum('users'), sum('events'), sum('sessions'), sum('added'), sum('rowsWritten')]).toEqual([
      whole.users,
      whole.events,
      whole.sessions,
      whole.added,
      whole.rowsWritten,
    ]);

    // The shards are disjoint and cover every key: ClickHouse's own hash says which is whose.
    const owners = await admin.query({
      query: `SELECT cityHash64(user_key) % 3 AS shard, uniqExact(user_key) AS users FROM ${three.database}.events GROUP BY shard ORDER BY shard`,
      format: 'JSONEachRow',
    });
    expect(((await owners.json()) as Array<{ users: string }>).map((r) => Number(r.users))).toEqual(sharded.map((s) => s.users));

    const expected = await recomputeRecords(traffic, 1);
    expect(withoutOpenFlag(await currentSessions(admin, one.database))).toEqual(expected);
    expect(await currentSessions(admin, three.database)).toEqual(await currentSessions(admin, one.database));
    expect(await rows(three.database)).toEqual(await rows(one.database));

    // Late events after a later D, 45 s after others: they extend and merge sessions. Recalculated from D.
    const since = t0 + 30 * MINUTE;
    const late: RawEvent[] = traffic
      .filter((event, i) => i % 23 === 0 && timeOf(event) >= since)
      .map((event, i) => ({ ...event, event_id: `late-${i}`, timestamp: timeOf(event) + 45_000 }));
    await store(one.database, late);
    await store(three.database, late);
    const [again] = (await recalculate(one.env, since, 1)) as [RecalculationStats];
    const againSharded = await recalculate(three.env, since, 3);
    expect(again.changed + again.added + again.vanished).toBeGreaterThan(0);
    expect(againSharded.reduce((n, s) => n + s.rowsWritten, 0)).toBe(again.rowsWritten);
    expect(withoutOpenFlag(await currentSessions(admin, one.database))).toEqual(await recomputeRecords([...traffic, ...late], 1));
    expect(await currentSessions(admin, three.database)).toEqual(await currentSessions(admin, one.database));
    expect(await rows(three.database)).toEqual(await rows(one.database));
  });
});
