/** Configuration checks that stop a command before it connects anywhere (exit code 2). */
import { loadConfig, loadSessionTimeoutMinutes } from '../../../src/config';
import { InvalidConfigError } from '../../../src/errors';

function problems(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    return (err as Error).message;
  }
  throw new Error('expected an invalid configuration');
}

describe('loadConfig', () => {
  it('accepts host:port brokers (names, IPv4, bracketed IPv6) and Kafka topic names', () => {
    const config = loadConfig({ KAFKA_BROKERS: 'kafka-1:9092, 10.0.0.2:19092,[::1]:9092', KAFKA_TOPICS: 'events,app.events_v2' });
    expect(config.kafka.brokers).toEqual(['kafka-1:9092', '10.0.0.2:19092', '[::1]:9092']);
    expect(config.kafka.topics).toEqual(['events', 'app.events_v2']);
    expect(config.connectTimeoutMs).toBe(15_000);
    expect(config.eventsTtlDays).toBe(400);
  });

  it('lists a bad broker list and bad topics together with every other problem', () => {
    const message = problems({
      KAFKA_BROKERS: 'PLAINTEXT://k1:9092,k2,k3:99999',
      KAFKA_TOPICS: 'ok,bad topic',
      KAFKA_DEAD_LETTER_TOPIC: 'dead/letter',
      REDIS_URL: 'not a url',
      CONNECT_TIMEOUT_SECONDS: '0',
    });
    for (const part of ["'PLAINTEXT://k1:9092' is not host:port", "'k2' is not host:port", "'k3:99999'", 'KAFKA_TOPICS.1', 'KAFKA_DEAD_LETTER_TOPIC', 'REDIS_URL', 'CONNECT_TIMEOUT_SECONDS']) {
      expect(message).toContain(part);
    }
  });
});

describe('loadSessionTimeoutMinutes (offline recompute)', () => {
  it('reads SESSION_TIMEOUT_MINUTES alone, 30 by default, and ignores unrelated bad settings', () => {
    expect(loadSessionTimeoutMinutes({})).toBe(30);
    expect(loadSessionTimeoutMinutes({ SESSION_TIMEOUT_MINUTES: '45', KAFKA_BROKERS: 'nonsense' })).toBe(45);
  });

  it('refuses an invalid value with InvalidConfigError (exit 2)', () => {
    for (const value of ['0', '-5', 'thirty']) expect(() => loadSessionTimeoutMinutes({ SESSION_TIMEOUT_MINUTES: value })).toThrow(InvalidConfigError);
  });
});
