/**
 * The collector end to end: Segment's own server SDK (@segment/analytics-node) and a store's
 * POS batch post to `collect`, which produces to Kafka; the worker writes sessions to ClickHouse,
 * and they equal the offline recompute of the very messages the SDK sent. A cookieless browser
 * visit is enriched (device, geo) and its IP and User-Agent are in none of Kafka, ClickHouse or
 * the collector's log lines.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Analytics } from '@segment/analytics-node';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../src/clickhouse/migrations';
import { DEFAULT_SITE } from '../../src/events/visitor-key';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, newRedisPrefix, uniqueName } from '../support';
import { AUTH, CHROME_MAC, KEY } from '../support/collect-app';
import { recomputeSegment, startCollector, type RunningCollector } from '../support/collect-harness';
import { readTopic } from '../support/read-topic';
import { WorkerProcess, createTopic, currentSessions, waitFor, withoutOpenFlag, workerEnv } from '../support/worker-harness';

jest.setTimeout(180_000);

const TEST_IP = '81.2.69.142'; // in the bundled database: London, GB
const UA = CHROME_MAC.replace('Chrome/120.0.0.0', 'Chrome/120.0.6099.71');

describe('sessionizer collect, end to end', () => {
  let kafka: Kafka;
  let admin: ClickHouseClient;
  let worker: WorkerProcess | undefined;
  let running: RunningCollector | undefined;
  let redisPrefix: string;

  beforeAll(async () => {
    kafka = await createKafka('collect-test');
    admin = await createClickHouseClient();
    redisPrefix = newRedisPrefix('collect_e2e');
  });
  afterAll(async () => {
    await running?.collector.stop();
    await worker?.kill();
    await admin.close();
    const redis = createRedis();
    await deleteRedisKeys(redis, redisPrefix);
    await deleteRedisKeys(redis, `{${redisPrefix}`);
    await redis.quit();
  });

  it('analytics-node calls, a POS batch and a cookieless visit become the sessions recompute makes; no IP anywhere', async () => {
    const topic = uniqueName('collect');
    const database = uniqueName('collect');
    await createTopic(kafka, topic, 4);
    await migrate(admin, { database, cluster: '' });
    worker = new WorkerProcess(await workerEnv({ topic, groupId: uniqueName('collect_group'), redisPrefix, database }));
    // The key's site is `default`, so the sessions equal what `recompute --format segment` makes
    // of the same messages, which name no site.
    running = await startCollector(kafka, redisPrefix, { topic, cookieless: true, geoipDatabases: 'bundled', trustedProxies: ['127.0.0.1'], writeKeys: new Map([[KEY, DEFAULT_SITE]]) });
    await worker.ready();

    // 1. Segment's server SDK, pointed at the collector; its requests are kept as sent.
    const sent: Array<Record<string, unknown>> = [];
    const analytics = new Analytics({
      writeKey: KEY,
      host: running.url,
      maxEventsInBatch: 5,
      flushInterval: 200,
      httpClient: async (url, init) => {
        sent.push(...(JSON.parse(init.body) as { batch: Array<Record<string, unknown>> }).batch);
        return fetch(url, init);
      },
    });
    const t0 = Date.parse('2025-06-01T09:00:00.000Z');
    for (let u = 0; u < 3; u++) {
      const userId = `user-${u}`;
      analytics.identify({ userId, traits: { plan: 'pro' }, timestamp: new Date(t0 + u * 1000) });
      analytics.track({ userId, event: 'Viewed Product', properties: { sku: `sku-${u}` }, timestamp: new Date(t0 + 60_000 + u * 1000) });
      analytics.track({ userId, event: 'Order Completed', properties: { key_event: true }, timestamp: new Date(t0 + 120_000 + u * 1000) });
      // An hour later: a second session.
      analytics.track({ userId, event: 'Viewed Product', timestamp: new Date(t0 + 3_600_000 + u * 1000) });
    }
    await analytics.closeAndFlush({ timeout: 30_000 });
    expect(sent).toHaveLength(12);

    // 2. A store's till posts its day's purchases in one batch, by user id.
    const pos = Array.from({ length: 4 }, (_, i) => ({
      type: 'track',
      messageId: `pos-${i}`,
      userId: `member-${i % 2}`,
      event: 'Order Completed',
      timestamp: new Date(t0 + 7_200_000 + i * 300_000).toISOString(),
      context: { channel: 'store' },
      properties: { store: 'Lyon-2', total: 10 + i },
    }));
    const posAnswer = await fetch(`${running.url}/v1/batch`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json', 'user-agent': 'pos-till/3.2' }, body: JSON.stringify({ batch: pos }) });
    expect(posAnswer.status).toBe(200);

    // 3. A cookieless browser visit from a public IP (through a trusted proxy).
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${running.url}/v1/page`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', 'user-agent': UA, 'x-forwarded-for': TEST_IP },
        body: JSON.stringify({ writeKey: KEY, messageId: `web-${i}`, name: `Page ${i}`, context: { page: { url: `https://shop.example/p/${i}?utm_source=news&utm_medium=email` } } }),
      });
      expect(res.status).toBe(200);
    }

    const expected = await recomputeSegment([...sent, ...pos]);
    expect(expected.map((s) => s.user_key).sort()).toEqual(['member-0', 'member-1', 'user-0', 'user-0', 'user-1', 'user-1', 'user-2', 'user-2']);
    let known: ReturnType<typeof withoutOpenFlag> = [];
    let rows: Awaited<ReturnType<typeof currentSessions>> = [];
    await waitFor(
      async () => {
        rows = await currentSessions(admin, database);
        known = withoutOpenFlag(rows.filter((r) => !r.user_key.startsWith('c-') && r.is_open === 0));
        return JSON.stringify(known) === JSON.stringify(expected) && rows.some((r) => r.user_key.startsWith('c-'));
      },
      120_000,
      () => `got ${JSON.stringify(known).slice(0, 1500)}\nwant ${JSON.stringify(expected).slice(0, 1500)}\n${worker?.output.slice(-2000)}`,
    );

    // The cookieless visit: one session, enriched server-side, campaign from the page URL.
    const web = rows.filter((r) => r.user_key.startsWith('c-'));
    expect(web).toHaveLength(1);
    expect(web[0]).toMatchObject({ events: 2, views: 2, device_type: 'desktop', os: 'macOS', browser: 'Chrome', country: 'GB', source: 'news', medium: 'email', channel: 'web' });
    expect(web[0]?.anonymous_id).toMatch(/^c-[0-9a-f]{32}$/);

    // Privacy: the IP and the raw User-Agent are nowhere.
    const messages = await readTopic(kafka, topic, 18, 30_000);
    expect(messages).toHaveLength(18);
    expect(new Set(messages.map((m) => (JSON.parse(m.value) as { site?: string }).site))).toEqual(new Set([DEFAULT_SITE]));
    const kafkaText = JSON.stringify(messages.map((m) => [m.key, m.value]));
    const clickhouseText = await dumpDatabase(admin, database);
    expect(clickhouseText).toContain('London'); // the dump is real: the geo of the visit is there
    for (const [where, text] of [
      ['kafka', kafkaText],
      ['clickhouse', clickhouseText],
      ['collector log', running.logs()],
      ['worker log', worker.output],
    ] as const) {
      expect([where, text.includes(TEST_IP)]).toEqual([where, false]);
      expect([where, text.includes(UA)]).toEqual([where, false]);
    }
    expect(running.logs()).toContain('collector listening'); // the log was captured
  });
});

/** Every row of every table of the database, as text. */
async function dumpDatabase(client: ClickHouseClient, database: string): Promise<string> {
  const tables = (await (await client.query({ query: `SELECT name FROM system.tables WHERE database = {db:String}`, query_params: { db: database }, format: 'JSONEachRow' })).json()) as Array<{ name: string }>;
  let text = '';
  for (const { name } of tables) {
    const result = await client.query({ query: `SELECT * FROM ${database}.\`${name}\``, format: 'JSONEachRow' });
    text += await result.text();
  }
  return text;
}
