/**
 * The collector under bad input and failure, on real sockets against the real broker: every
 * request gets its documented status (400 malformed, 401 wrong key, 413 oversized, 429 past the
 * rate limit, 503 with Retry-After while Kafka is cut), nothing that was answered 200 is missing
 * from the topic, the process stays up, and it accepts again once Kafka is back. Kafka is "cut"
 * with a TCP proxy that every broker connection of the collector goes through.
 */
import { connect } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { createKafka, createRedis, deleteRedisKeys, getKafka, newRedisPrefix, uniqueName } from '../support';
import { AUTH } from '../support/collect-app';
import { startCollector, type RunningCollector } from '../support/collect-harness';
import { readTopic } from '../support/read-topic';
import { TcpProxy } from '../support/tcp-proxy';
import { createTopic } from '../support/worker-harness';

jest.setTimeout(180_000);

describe('collect under bad input, floods and a Kafka outage', () => {
  let proxy: TcpProxy;
  let running: RunningCollector | undefined;
  let redisPrefix: string;
  let topic: string;
  let testKafka: Kafka;

  beforeAll(async () => {
    const { brokers } = await getKafka();
    const [host, port] = (brokers[0] as string).split(':');
    proxy = new TcpProxy(host as string, Number(port));
    await proxy.open();
    testKafka = await createKafka('collect-resilience');
    topic = uniqueName('collect_flood');
    await createTopic(testKafka, topic, 4);
    redisPrefix = newRedisPrefix('collect_flood');
  });
  afterAll(async () => {
    await running?.collector.stop();
    await proxy.cut();
    const redis = createRedis();
    await deleteRedisKeys(redis, redisPrefix);
    await redis.quit();
  });

  it('answers every request with a documented status and loses nothing it accepted', async () => {
    const { brokers } = await getKafka();
    // Whatever broker address the metadata names, the collector's connections go through the proxy.
    const proxied = new Kafka({
      clientId: 'collect-behind-proxy',
      brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
      socketFactory: ({ onConnect }) => {
        const socket = connect({ host: '127.0.0.1', port: proxy.port }, onConnect);
        socket.setKeepAlive(true, 1_000);
        return socket;
      },
    });
    running = await startCollector(proxied, redisPrefix, {
      topic,
      ackTimeoutMs: 3_000,
      retryAfterSeconds: 1,
      rateLimit: { windowMs: 60_000, perKey: 0, perIp: 0 },
    });
    const url = running.url;
    const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
      fetch(url + path, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json', ...headers }, body });

    // Bad input first: each with its status, none reaching Kafka.
    expect((await post('/v1/track', '{"event": "x", ')).status).toBe(400);
    expect((await post('/v1/track', JSON.stringify({ event: 'x', messageId: 'bad', anonymousId: 'a' }), { authorization: 'Basic d3Jvbmc6' })).status).toBe(401);
    expect((await post('/v1/track', JSON.stringify({ event: 'x', messageId: 'big', anonymousId: 'a', properties: { p: 'x'.repeat(40_000) } }))).status).toBe(413);
    expect((await post('/v1/batch', JSON.stringify({ batch: [{ type: 'track', event: 'x', anonymousId: 'a', messageId: 'huge', properties: { p: 'y'.repeat(600_000) } }] }))).status).toBe(413);

    // A flood from 16 clients, each sending batches of 10 events; Kafka is cut for 3 s mid-flood.
    const accepted = new Set<string>();
    const statuses = new Map<number, number>();
    const retryAfterSeen: string[] = [];
    let next = 0;
    let stop = false;
    const client = async () => {
      while (!stop) {
        const ids = Array.from({ length: 10 }, () => `f-${next++}`);
        const body = JSON.stringify({ batch: ids.map((id) => ({ type: 'track', event: 'Flood', messageId: id, anonymousId: `v-${id}`, timestamp: new Date().toISOString() })) });
        const res = await post('/v1/batch', body);
        await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200) for (const id of ids) accepted.add(id);
        if (res.status === 503) {
          retryAfterSeen.push(res.headers.get('retry-after') ?? '');
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    const clients = Array.from({ length: 16 }, client);
    await new Promise((r) => setTimeout(r, 2_000));
    const beforeCut = accepted.size;
    await proxy.cut();
    await new Promise((r) => setTimeout(r, 3_000));
    await proxy.open();
    // Back: the collector must accept again (after its cool-down and the producer's reconnect).
    const acceptedAtReopen = accepted.size;
    const deadline = Date.now() + 60_000;
    while (accepted.size < acceptedAtReopen + 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await Promise.all(clients);

    if (accepted.size < acceptedAtReopen + 200) console.log(running.logs().split('\n').filter((l) => !l.includes('collect request failed')).join('\n').slice(-6000));
    expect([...statuses.keys()].sort()).toEqual([200, 503]);
    expect(beforeCut).toBeGreaterThan(0);
    expect(accepted.size).toBeGreaterThanOrEqual(acceptedAtReopen + 200);
    expect(retryAfterSeen.every((v) => v === '1')).toBe(true);
    expect(retryAfterSeen.length).toBeGreaterThan(0);

    // Nothing accepted is lost: every event answered 200 is on the topic.
    const produced = running.collector.delivery.producedTotal;
    expect(produced).toBeGreaterThanOrEqual(accepted.size);
    const onTopic = new Set((await readTopic(testKafka, topic, produced, 60_000)).map((m) => (JSON.parse(String(m.value)) as { event_id: string }).event_id));
    const missing = [...accepted].filter((id) => !onTopic.has(id));
    expect(missing).toEqual([]);
    console.log(`flood: ${accepted.size} events accepted, ${onTopic.size} distinct on the topic, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);

    // The process is up and healthy.
    expect((await running.collector.readiness()).status).toBe('ok');
  });

  it('answers 429 past the per-IP rate limit on a real socket, and the others 200', async () => {
    const other = await startCollector(testKafka, redisPrefix, { topic, rateLimit: { windowMs: 60_000, perKey: 0, perIp: 20 } });
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          fetch(`${other.url}/v1/track`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'x', messageId: `rl-${i}`, anonymousId: 'a' }) }).then((r) => r.status),
        ),
      );
      expect(answers.filter((s) => s === 200)).toHaveLength(20);
      expect(answers.filter((s) => s === 429)).toHaveLength(20);
    } finally {
      await other.collector.stop();
    }
  });
});
