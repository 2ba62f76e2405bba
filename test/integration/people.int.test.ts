/**
 * People in ClickHouse (schemas/clickhouse/013_people.sql): the live identity map equals
 * `recompute --identities`, and `person_sessions` and `persons` equal what the journey rules
 * compute from recompute's output, after a worker was killed with SIGKILL mid-run; and the
 * identity map's own rules on rows written straight into `events` (late links, duplicates,
 * copies in one millisecond, links stored before the schema existed).
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { DEFAULT_SCHEMA_DIR, migrate } from '../../src/clickhouse/migrations';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, dropTestDatabase, newRedisPrefix, uniqueName } from '../support';
import { inReadOrder, offlinePeople, peopleTraffic, readIdentityMap, readPersons, readPersonSessions } from '../support/people';
import { WorkerProcess, createTopic, produce, waitFor, waitForSessions, workerEnv } from '../support/worker-harness';

jest.setTimeout(300_000);

describe('people', () => {
  let kafka: Kafka;
  let admin: ClickHouseClient;
  const workers: WorkerProcess[] = [];
  const redisPrefixes: string[] = [];
  const databases: string[] = [];

  beforeAll(async () => {
    kafka = await createKafka('people-test');
    admin = await createClickHouseClient();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill()));
  });
  afterAll(async () => {
    for (const database of databases) await dropTestDatabase(admin, database);
    await admin.close();
    const redis = createRedis();
    for (const prefix of redisPrefixes) await deleteRedisKeys(redis, `{${prefix}`);
    await redis.quit();
  });

  async function freshDatabase(name: string, schemaDir?: string): Promise<string> {
    const database = uniqueName(name);
    databases.push(database);
    await migrate(admin, { database, cluster: '', schemaDir });
    return database;
  }

  it('workers (one killed with SIGKILL, rebalances) and recompute agree on identities, journeys and persons of 500+ people', async () => {
    const events = peopleTraffic(1_600, 520, 31);
    const offline = await offlinePeople(events);
    const people = new Set(offline.personSessions.map((s) => s.person_id).filter((p) => p.includes('person-')));
    expect(people.size).toBeGreaterThanOrEqual(500);
    // Several devices per person, and devices whose latest user is not their first.
    expect(offline.persons.filter((p) => p.user_keys >= 3).length).toBeGreaterThan(100);
    const firstUser = new Map<string, string>();
    for (const e of events) if (e.anonymous_id && e.user_id && !firstUser.has(String(e.anonymous_id))) firstUser.set(String(e.anonymous_id), String(e.user_id));
    expect(offline.identities.filter((i) => firstUser.get(i.anonymous_id) !== i.user_id).length).toBeGreaterThan(10);

    const topic = uniqueName('people');
    const database = await freshDatabase('people');
    await createTopic(kafka, topic, 4);
    const redisPrefix = newRedisPrefix('people');
    redisPrefixes.push(redisPrefix);
    const env = await workerEnv({ topic, groupId: uniqueName('people_group'), redisPrefix, database });
    await produce(kafka, topic, events);
    const stored = async () => {
      const result = await admin.query({ query: `SELECT count() AS n FROM ${database}.events`, format: 'JSONEachRow' });
      return Number((await result.json<{ n: string }>())[0]?.n);
    };
    // One worker, killed with SIGKILL part-way; then two that split the partitions (a
    // rebalance), one of which leaves half-way (another rebalance).
    const first = new WorkerProcess(env);
    workers.push(first);
    await waitFor(async () => (await stored()) > events.length * 0.15, 90_000, () => first.output);
    await first.kill();
    const [second, third] = [new WorkerProcess(env), new WorkerProcess(env)];
    workers.push(second, third);
    await waitFor(async () => (await stored()) > events.length * 0.5, 120_000, () => second.output + third.output);
    await third.stop();
    await waitForSessions(admin, database, offline.sessions, 240_000, () => second.output);

    expect(await readIdentityMap(admin, database)).toEqual(offline.identities);
    const journeys = inReadOrder(offline.personSessions);
    expect(await readPersonSessions(admin, database)).toEqual(journeys);
    // A day's journeys: the whole journeys of the people with a session that day.
    for (const day of ['2024-05-01', '2024-05-02', '2024-04-30']) {
      const active = new Set(journeys.filter((s) => s.started_at.startsWith(day)).map((s) => s.person_id));
      const expected = journeys.filter((s) => active.has(s.person_id));
      if (day === '2024-05-02') expect(expected.length).toBeGreaterThan(0);
      expect(await readPersonSessions(admin, database, `person_id IN (SELECT person_id FROM ${database}.session_persons WHERE toDate(started_at) = '${day}')`)).toEqual(expected);
    }
    const persons = await readPersons(admin, database);
    expect(persons.length).toBe(offline.persons.length);
    expect(persons).toEqual(inReadOrder(offline.persons as never) as never);
    expect(persons.reduce((n, p) => n + p.converting_sessions, 0)).toBeGreaterThan(0);
    // (How the worker stops is worker.int.test.ts's business; afterEach ends it.)
  });

  it("persons' first and last touch keep any bytes in the values, and follow (started_at, session_id)", async () => {
    const database = await freshDatabase('touch');
    const session = (id: string, started: string, source: string, medium: string, campaign: string) => ({
      session_id: id,
      user_key: 'dev',
      anonymous_id: 'dev',
      user_id: 'p1',
      started_at: started,
      ended_at: started,
      source,
      medium,
      campaign,
      channel: 'web',
      is_open: 0,
      sign: 1,
      version: 1,
    });
    const odd = ['00012\u0000x', 'é😀', ''];
    await admin.insert({
      table: `${database}.sessions`,
      values: [
        session('b0000000000000000000000000000000', '2024-05-01T10:00:00.000Z', odd[0] as string, odd[1] as string, odd[2] as string),
        session('a0000000000000000000000000000000', '2024-05-01T10:00:00.000Z', 'same-ms-smaller-id', 'm', 'c'),
        session('c0000000000000000000000000000000', '2024-05-02T10:00:00.000Z', odd[2] as string, odd[0] as string, odd[1] as string),
      ],
      format: 'JSONEachRow',
    });
    const [person] = await readPersons(admin, database);
    expect(person).toMatchObject({
      person_id: 'p1',
      first_source: 'same-ms-smaller-id',
      first_medium: 'm',
      first_campaign: 'c',
      last_source: odd[2],
      last_medium: odd[0],
      last_campaign: odd[1],
      sessions: 3,
    });
  });

  describe('identity_map from events rows', () => {
    const row = (anonymous_id: string, user_id: string, ms: number, event_id: string) => ({
      event_id,
      user_key: anonymous_id || user_id,
      anonymous_id,
      user_id,
      timestamp: new Date(ms).toISOString(),
      type: 'login',
    });
    const T0 = Date.parse('2024-05-01T10:00:00Z');
    const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

    async function insert(client: ClickHouseClient, database: string, rows: ReturnType<typeof row>[]): Promise<void> {
      await client.insert({ table: `${database}.events`, values: rows, format: 'JSONEachRow', clickhouse_settings: { date_time_input_format: 'best_effort' } });
    }

    it('keeps the latest link by (timestamp, event_id), whatever the insert order, copies or block split', async () => {
      const database = await freshDatabase('idmap');
      await insert(admin, database, [row('tablet', 'bob', T0 + 10 * 60_000, 'b'), row('phone', 'alice', T0, 'x')]);
      await insert(admin, database, [row('tablet', 'dave', T0 + 10 * 60_000, 'a')]); // same ms, smaller event id: loses
      await insert(admin, database, [row('tablet', 'alice', T0, 'z'), row('tablet', 'bob', T0 + 10 * 60_000, 'b')]); // late, and a copy
      await insert(admin, database, [row('laptop', '', T0 + 60 * 60_000, 'n'), row('', 'carol', T0, 's')]); // empty ids link nothing
      await insert(admin, database, [row('phone', 'alice', T0, 'x')]); // a redelivered copy
      expect(await readIdentityMap(admin, database)).toEqual([
        { site: 'default', anonymous_id: 'phone', user_id: 'alice', linked_at: at(0) },
        { site: 'default', anonymous_id: 'tablet', user_id: 'bob', linked_at: at(10) },
      ]);
      await admin.command({ query: `OPTIMIZE TABLE ${database}.identity_links FINAL` });
      expect((await readIdentityMap(admin, database)).map((e) => e.user_id)).toEqual(['alice', 'bob']);
    });

    it('takes in the links of events stored before the people schema was applied', async () => {
      const before = mkdtempSync(join(tmpdir(), 'people-schema-'));
      try {
        for (const file of ['000_schema_migrations.sql', '001_sessions.sql', '002_events.sql']) cpSync(join(DEFAULT_SCHEMA_DIR, file), join(before, file));
        const database = await freshDatabase('idmap_backfill', before);
        await insert(admin, database, [row('phone', 'alice', T0, 'x'), row('phone', 'bob', T0 - 60_000, 'y')]);
        await migrate(admin, { database, cluster: '' });
        expect(await readIdentityMap(admin, database)).toEqual([{ site: 'default', anonymous_id: 'phone', user_id: 'alice', linked_at: at(0) }]);
      } finally {
        rmSync(before, { recursive: true, force: true });
      }
    });
  });
});
