/**
 * Sites through the streaming worker, against real Kafka, Redis and ClickHouse: two sites with
 * the same ids share nothing (no session, duplicate, number or person), a topic tied to a site
 * gives its events that site, and random traffic over several sites — through a SIGKILL and a
 * rebalance — ends with each site's sessions exactly what that site's events alone give.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../src/clickhouse/migrations';
import type { SessionRecord } from '../../src/engine/session-row';
import { generateTraffic, type RawEvent } from '../../src/loadgen/traffic';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, newRedisPrefix, uniqueName } from '../support';
import {
  WorkerProcess,
  createTopic,
  currentSessions,
  produce,
  recomputeRecords,
  waitFor,
  waitForSessions,
  withoutOpenFlag,
  workerEnv,
} from '../support/worker-harness';

jest.setTimeout(300_000);

let kafka: Kafka;
let admin: ClickHouseClient;
const workers: WorkerProcess[] = [];
const redisPrefixes: string[] = [];

beforeAll(async () => {
  kafka = await createKafka('sites-test');
  admin = await createClickHouseClient();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.kill()));
});
afterAll(async () => {
  await admin.close();
  const redis = createRedis();
  for (const prefix of redisPrefixes) await deleteRedisKeys(redis, `{${prefix}`);
  await redis.quit();
});

/** A fresh topic (and a second one, tied to the site `tills`), database and Redis prefix. */
async function setUp(name: string) {
  const topic = uniqueName(name);
  const tillsTopic = uniqueName(`${name}_tills`);
  const database = uniqueName(name);
  await createTopic(kafka, topic, 4);
  await createTopic(kafka, tillsTopic, 2);
  await migrate(admin, { database, cluster: '' });
  const redisPrefix = newRedisPrefix(name);
  redisPrefixes.push(redisPrefix);
  const env = await workerEnv({
    topic,
    groupId: uniqueName(`${name}_group`),
    redisPrefix,
    database,
    extra: { KAFKA_TOPICS: `${topic},${tillsTopic}`, KAFKA_TOPIC_SITES: `${tillsTopic}:tills` },
  });
  const start = () => {
    const w = new WorkerProcess(env);
    workers.push(w);
    return w;
  };
  return { topic, tillsTopic, database, start };
}

function traffic(users: number, seed: number, prefix: string): RawEvent[] {
  return [
    ...generateTraffic({ users, startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 6 * 3_600_000, duplicateRate: 0.02, disorderMs: 60_000, seed, idPrefix: prefix }),
  ];
}

/** The same events (same ids, same event ids) in another site. */
function inSite(events: readonly RawEvent[], site: string | undefined): RawEvent[] {
  return events.map((e) => {
    const copy: RawEvent = { ...e };
    if (site === undefined) delete copy.site;
    else copy.site = site;
    return copy;
  });
}

const timeOf = (e: RawEvent) => (typeof e.timestamp === 'number' ? e.timestamp : Date.parse(String(e.timestamp)));

/**
 * Several streams as one live stream brings them: each stream's own order kept (with its slight
 * disorder), the streams merged by the time of their next event. One site's whole history
 * after another's would be later than the allowed lateness: kept, but never sessionized live.
 */
function interleave(streams: RawEvent[][]): RawEvent[] {
  const at = streams.map(() => 0);
  const out: RawEvent[] = [];
  for (;;) {
    let next = -1;
    streams.forEach((stream, i) => {
      const head = stream[at[i] as number];
      if (head && (next < 0 || timeOf(head) < timeOf(streams[next]?.[at[next] as number] as RawEvent))) next = i;
    });
    if (next < 0) return out;
    out.push(streams[next]?.[at[next] as number] as RawEvent);
    at[next] = (at[next] as number) + 1;
  }
}

function bySite(records: readonly SessionRecord[], site: string): SessionRecord[] {
  return records.filter((r) => r.site === site);
}

async function countRows(database: string): Promise<number> {
  const result = await admin.query({ query: `SELECT count() AS n FROM ${database}.sessions`, format: 'JSONEachRow' });
  const [row] = (await result.json()) as Array<{ n: string }>;
  return Number(row?.n ?? 0);
}

it('the same user_id and the same event_ids in two sites make two separate sessions and people; a topic tied to a site gives it', async () => {
  const { topic, tillsTopic, database, start } = await setUp('sites_apart');
  const at = (minute: number) => Date.parse('2024-05-01T10:00:00Z') + minute * 60_000;
  // A login on a phone, then a purchase known by user id only (a person of two user keys).
  const visit: RawEvent[] = [
    { event_id: 'e1', type: 'page_view', timestamp: at(0), anonymous_id: 'phone-1', page: { path: '/' } },
    { event_id: 'e2', type: 'login', timestamp: at(2), anonymous_id: 'phone-1', user_id: 'alice' },
    { event_id: 'e3', type: 'purchase', timestamp: at(5), user_id: 'alice', key_event: true },
  ];
  const shop = inSite(visit, 'shop');
  const blog = inSite(visit, 'blog');
  const plain = inSite(visit, undefined); // the site default
  // The tills topic's events name no site: they are of the site `tills`.
  const tills = inSite(visit, undefined);
  await produce(kafka, topic, [...shop, ...blog, ...plain, ...shop]); // shop's events twice: duplicates within a site
  await produce(kafka, tillsTopic, tills);
  const worker = start();

  const expected = await recomputeRecords([...shop, ...blog, ...plain, ...inSite(tills, 'tills')]);
  expect([...new Set(expected.map((r) => r.site))]).toEqual(['blog', 'default', 'shop', 'tills']);
  await waitForSessions(admin, database, expected, 120_000, () => worker.output);

  const rows = withoutOpenFlag(await currentSessions(admin, database));
  for (const site of ['blog', 'default', 'shop', 'tills']) {
    // Each site: the phone's session (2 events, numbered 1) and alice's purchase, as if alone.
    expect(bySite(rows, site).map((r) => [r.user_key, r.events, r.session_number])).toEqual([
      ['alice', 1, 1],
      ['phone-1', 2, 1],
    ]);
  }
  expect(new Set(rows.map((r) => r.session_id)).size).toBe(rows.length); // no id shared between sites
  // The site default keeps the session ids of before sites: sha256(user_key|started_at_ms).
  const { createHash } = await import('node:crypto');
  const phoneDefault = bySite(rows, 'default').find((r) => r.user_key === 'phone-1');
  expect(phoneDefault?.session_id).toBe(createHash('sha256').update(`phone-1|${at(0)}`).digest('hex').slice(0, 32));

  // People: alice in each site, with her two sessions there, never four.
  const persons = await admin.query({ query: `SELECT site, person_id, sessions FROM ${database}.persons ORDER BY site, person_id`, format: 'JSONEachRow' });
  expect(((await persons.json()) as Array<{ site: string; person_id: string; sessions: string | number }>).map((p) => [p.site, p.person_id, Number(p.sessions)])).toEqual([
    ['blog', 'alice', 2],
    ['default', 'alice', 2],
    ['shop', 'alice', 2],
    ['tills', 'alice', 2],
  ]);
  expect(await worker.stop()).toBe(0);
});

it('random traffic over several sites with equal ids, through a SIGKILL and a rebalance: each site equals its events alone', async () => {
  const { topic, tillsTopic, database, start } = await setUp('sites_faults');
  // The same visitors and event ids in three sites, and some of each site's own.
  const shared = traffic(300, 41, 'v-');
  const sites = ['default', 'shop', 'blog.example'];
  const events = interleave(sites.flatMap((site, i) => [inSite(shared, site === 'default' ? undefined : site), inSite(traffic(100, 42 + i, `own${i}-`), site === 'default' ? undefined : site)]));
  const tills = inSite(traffic(100, 45, 'v-'), undefined); // same id prefix as `shared`: the site tills tells them apart
  const all = [...events, ...inSite(tills, 'tills')];
  const expected = await recomputeRecords(all);
  // recompute of each site's events alone is what the whole gives for that site (the unit
  // property test proves it for random events; here it is the reference for the worker).
  for (const site of [...sites, 'tills']) {
    const alone = await recomputeRecords(all.filter((e) => ((e.site as string | undefined) ?? 'default') === site));
    expect(bySite(expected, site)).toEqual(alone);
  }

  const order = events;
  const third = Math.floor(order.length / 3);
  const [a, b] = [start(), start()];
  await Promise.all([a.ready(), b.ready()]);
  await produce(kafka, topic, order.slice(0, third));
  await produce(kafka, tillsTopic, tills.slice(0, Math.floor(tills.length / 2)));
  await waitFor(async () => (await countRows(database)) > 0, 60_000, () => a.output + b.output);
  await a.kill(); // SIGKILL mid-stream: its partitions go to b (a rebalance), its last batch is redone
  await produce(kafka, topic, order.slice(third, 2 * third));
  const c = start(); // one joins: another rebalance
  await c.ready();
  await produce(kafka, topic, order.slice(2 * third));
  await produce(kafka, tillsTopic, tills.slice(Math.floor(tills.length / 2)));

  await waitForSessions(admin, database, expected, 240_000, () => b.output.slice(-2000) + c.output.slice(-2000));
  const result = await admin.query({ query: `SELECT site, sum(sign) AS s, sum(sign * events) AS e FROM ${database}.sessions GROUP BY site ORDER BY site`, format: 'JSONEachRow' });
  const totals = ((await result.json()) as Array<{ site: string; s: string; e: string }>).map((r) => [r.site, Number(r.s), Number(r.e)]);
  expect(totals).toEqual(
    ['blog.example', 'default', 'shop', 'tills'].map((site) => [site, bySite(expected, site).length, bySite(expected, site).reduce((n, r) => n + r.events, 0)]),
  );
});
