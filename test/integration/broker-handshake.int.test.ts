/**
 * A frozen broker first in the bootstrap list (played by a paused proxy in front of the test
 * broker: it accepts connections and answers nothing). kafkajs alone keeps the half-open
 * connection as if connected and every request fails with "Broker not connected"; with the
 * repair (src/kafka/broker-handshake.ts) the client moves on to the next broker and works, after
 * seconds, not after its whole request timeout.
 *
 * The tests run in this order on purpose: the repair patches kafkajs for the whole process.
 */
import { Kafka, logLevel } from 'kafkajs';
import { isUnresponsive, repairBrokerHandshake } from '../../src/kafka/broker-handshake';
import { shuffledBrokers } from '../../src/kafka/kafka-client';
import { getKafka } from '../support';
import { TcpProxy } from '../support/tcp-proxy';

jest.setTimeout(60_000);

describe('a frozen broker first in the bootstrap list', () => {
  let frozen: TcpProxy;
  let live: string;

  beforeAll(async () => {
    live = (await getKafka()).brokers[0] as string;
    const [host, port] = live.split(':') as [string, string];
    frozen = new TcpProxy(host, Number(port));
    await frozen.open();
    frozen.pause();
  });
  afterAll(async () => {
    frozen.resume();
    await frozen.cut();
  });

  /** A client whose every seed choice starts on the frozen broker, with short timeouts (a request's is `requestTimeout`). */
  function client(requestTimeout = 2_000): Kafka {
    return new Kafka({
      clientId: 'broker-handshake-test',
      brokers: () => [`127.0.0.1:${frozen.port}`, live],
      connectionTimeout: 1_000,
      requestTimeout,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 500 },
      logLevel: logLevel.NOTHING,
    });
  }

  it('poisons a kafkajs client without the repair: requests fail with "Broker not connected"', async () => {
    const admin = client().admin();
    try {
      await admin.connect(); // "succeeds": the retry finds the half-open socket and takes it for a connection
      await expect(admin.listTopics()).rejects.toThrow(/Broker not connected/);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  });

  it('with the repair, the client moves on to the next broker and its requests work', async () => {
    repairBrokerHandshake();
    repairBrokerHandshake(); // installing twice is harmless
    const admin = client().admin();
    try {
      await admin.connect();
      expect(Array.isArray(await admin.listTopics())).toBe(true);
      // And new clients start elsewhere for a while: the frozen broker goes last.
      const frozenAddress = `127.0.0.1:${frozen.port}`;
      expect(isUnresponsive(frozenAddress)).toBe(true);
      for (let i = 0; i < 10; i++) expect(shuffledBrokers([frozenAddress, live])()).toEqual([live, frozenAddress]);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  });

  it('with the repair, gives up on the frozen broker in seconds even when requests may take half a minute', async () => {
    repairBrokerHandshake(); // (already installed when the tests before ran)
    const admin = client(30_000).admin();
    const started = Date.now();
    try {
      await admin.connect();
      expect(Array.isArray(await admin.listTopics())).toBe(true);
      // Without the handshake's own bound kafkajs would wait the whole 30 s request timeout on
      // the frozen broker's API versions before trying the live one.
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  });
});
