/**
 * Credentials never reach the log: a loaded configuration, errors that quote a password or a
 * URL with user info, and plain messages, all logged through `createLogger` into memory.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../../src/config';
import { createLogger, REDACTED, scrubber, secretsOf, stripUrlCredentials } from '../../../src/observability/logger';

const SASL = 'sasl-Secret-1';
const REDIS_FILE_SECRET = 'redis-from-file-2';
const REDIS_URL_SECRET = 'redis-url-pw-3';
const CH_URL_SECRET = 'ch-url-pw-4';
const CH_SECRET = 'ch-Password-5';
const ALL = [SASL, REDIS_FILE_SECRET, REDIS_URL_SECRET, CH_URL_SECRET, CH_SECRET];

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'logger-test-'));
  writeFileSync(join(dir, 'redis-password'), `${REDIS_FILE_SECRET}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function memoryLog(secrets: readonly string[] = []) {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger('trace', stream, { secrets }), lines };
}

function env(): NodeJS.ProcessEnv {
  return {
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: 'worker',
    KAFKA_SASL_PASSWORD: SASL,
    REDIS_URL: `rediss://default:${REDIS_URL_SECRET}@redis.internal:6380/0`,
    REDIS_PASSWORD_FILE: join(dir, 'redis-password'),
    CLICKHOUSE_URL: `https://analytics:${CH_URL_SECRET}@clickhouse.internal:8443`,
    CLICKHOUSE_PASSWORD: CH_SECRET,
  };
}

describe('createLogger keeps credentials out of the log', () => {
  it('a loaded Config, logged whole, nested and spread, shows hosts but no secret', () => {
    const config = loadConfig(env());
    expect(config.redis.password).toBe(REDIS_FILE_SECRET);
    const { log, lines } = memoryLog(secretsOf(config));
    log.info({ config }, 'configuration');
    log.info(config, 'configuration spread');
    log.info({ wrapped: { deeper: { config } } }, 'configuration deep');
    log.info({ env: env() }, 'environment');
    const text = lines.join('\n');
    for (const secret of ALL) expect(text).not.toContain(secret);
    expect(text).toContain('redis.internal:6380');
    expect(text).toContain('clickhouse.internal:8443');
    expect(text).toContain(REDACTED);
    expect(lines).toHaveLength(4);
  });

  it('errors that quote a password or a URL with user info, as err, as first argument, as cause and in the message', () => {
    const config = loadConfig(env());
    const { log, lines } = memoryLog(secretsOf(config));
    const quoting = new Error(`authentication failed for password ${CH_SECRET}`);
    const withUrl = new Error(`connect ECONNREFUSED https://analytics:${CH_URL_SECRET}@clickhouse.internal:8443`);
    const wrapped = new Error('flush failed', { cause: withUrl });
    log.error({ err: quoting }, 'insert failed');
    log.error(withUrl);
    log.error(wrapped, 'flush failed');
    log.warn({ err: wrapped, attempt: 2 }, `retrying redis://:${REDIS_URL_SECRET}@redis.internal:6380`);
    log.warn(`kafka said: SASL ${SASL} rejected`);
    log.info({ other: new Error(`nested ${REDIS_FILE_SECRET}`) }, 'an error under another key');
    const text = lines.join('\n');
    for (const secret of ALL) expect(text).not.toContain(secret);
    expect(lines).toHaveLength(6);
    const first = JSON.parse(lines[0] as string) as { err: { message: string; stack: string } };
    expect(first.err.message).toBe(`authentication failed for password ${REDACTED}`);
    const second = JSON.parse(lines[1] as string) as { msg: string };
    expect(second.msg).toBe('connect ECONNREFUSED https://clickhouse.internal:8443');
  });

  it('keys that name a secret are redacted at any depth, even without the secret list', () => {
    const { log, lines } = memoryLog();
    log.info({ a: { b: { c: { d: { password: 'p1-secret', apiKey: 'k-secret', token: 't-secret', keep: 'visible' } } } } }, 'deep');
    const text = lines.join('\n');
    for (const secret of ['p1-secret', 'k-secret', 't-secret']) expect(text).not.toContain(secret);
    expect(text).toContain('visible');
  });

  it('scrubbing copies: the logged object itself is untouched', () => {
    const object = { password: 'abcdef', url: 'http://u:abcdef@h' };
    const scrubbed = scrubber(['abcdef'])(object);
    expect(scrubbed).toEqual({ password: REDACTED, url: 'http://h' });
    expect(object.password).toBe('abcdef');
  });
});

describe('stripUrlCredentials and secretsOf', () => {
  it.each([
    ['http://user:pass@host:8123/db', 'http://host:8123/db'],
    ['redis://:pw@127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['rediss://only-user@r:6380', 'rediss://r:6380'],
    ['see https://a:b@x.example/p?q=1 and http://c:d@y', 'see https://x.example/p?q=1 and http://y'],
    ['http://host:8123 has none', 'http://host:8123 has none'],
    ['mail user@example.com stays', 'mail user@example.com stays'],
  ])('%s', (input, output) => {
    expect(stripUrlCredentials(input)).toBe(output);
  });

  it('collects passwords from options and URLs, decoded and raw', () => {
    const config = loadConfig({ ...env(), CLICKHOUSE_URL: 'http://u:p%40ss-word@h:8123' });
    expect(secretsOf(config).sort()).toEqual([CH_SECRET, REDIS_FILE_SECRET, REDIS_URL_SECRET, SASL, 'p%40ss-word', 'p@ss-word'].sort());
  });
});
