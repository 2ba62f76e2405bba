/**
 * Failing fast and clearly (issue: operator experience): a service that is not there fails the
 * command within the connect timeout with one line naming the service, its address and what to
 * check — no stack trace; a missing topic is named with how to create it; a command with
 * nothing to send does not connect at all. Real processes, real services (or a port nothing
 * listens on).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort, REPO, runCli, type CliRun } from '../support/cli';
import { getClickHouse, getKafka, getRedisUrl, uniqueName } from '../support';

let work = '';
beforeAll(() => (work = mkdtempSync(join(tmpdir(), 'fast-failures-'))));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** One line on stderr, no stack frame, exit 1. */
function expectOneLineFailure(run: CliRun, pattern: RegExp): void {
  const lines = run.stderr.trim().split('\n');
  expect({ code: run.code, lines }).toEqual({ code: 1, lines: [expect.stringMatching(pattern)] });
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stdout).not.toMatch(/\n\s+at /);
}

describe('a service that cannot be reached', () => {
  it('produce: names Kafka, the address and the variable to check; a refused connection within 2 s, whatever the connect timeout', async () => {
    const port = await closedPort();
    const run = await runCli(['produce', '--input', join(REPO, 'examples', 'events.ndjson')], {
      env: { KAFKA_BROKERS: `127.0.0.1:${port}`, CONNECT_TIMEOUT_SECONDS: '60', LOG_LEVEL: 'debug' },
    });
    const lines = run.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(new RegExp(`^sessionizer: cannot reach Kafka at 127\\.0\\.0\\.1:${port}: connection refused\\. Check KAFKA_BROKERS`));
    expect(run.code).toBe(1);
    // The debug log's first and last probe lines bound the time spent trying: about 1 s of
    // refusals, not the 60 s of CONNECT_TIMEOUT_SECONDS.
    const times = lines.filter((line) => line.startsWith('{')).map((line) => Date.parse((JSON.parse(line) as { time: string }).time));
    expect(times.length).toBeGreaterThan(1);
    expect((times.at(-1) as number) - (times[0] as number)).toBeLessThan(2_000);
    expect(run.ms).toBeLessThan(15_000);
  }, 30_000);

  it('migrate and report: name ClickHouse; the debug log has the detail', async () => {
    const port = await closedPort();
    const env = { CLICKHOUSE_URL: `http://127.0.0.1:${port}`, CLICKHOUSE_PASSWORD: 'secret-pw', CONNECT_TIMEOUT_SECONDS: '2' };
    const migrate = await runCli(['migrate'], { env });
    expectOneLineFailure(migrate, new RegExp(`^sessionizer: cannot reach ClickHouse at http://127\\.0\\.0\\.1:${port}: connection refused\\. Check CLICKHOUSE_URL`));
    expect(migrate.stderr).not.toContain('secret-pw');
    const report = await runCli(['report', '--from', '2024-05-01', '--to', '2024-05-02'], { env: { ...env, LOG_LEVEL: 'debug' } });
    expect(report.code).toBe(1);
    expect(report.stderr).toMatch(/cannot reach ClickHouse/);
    expect(report.stderr).toMatch(/"level":20.*"msg":"clickhouse unreachable"/);
    expect(report.stderr).not.toContain('secret-pw');
  }, 30_000);

  it('worker: names Redis when Redis is not there (Kafka and ClickHouse are)', async () => {
    const port = await closedPort();
    const { brokers } = await getKafka();
    const clickhouse = await getClickHouse();
    const run = await runCli(['worker'], {
      env: {
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_CREATE_TOPICS: 'true',
        KAFKA_TOPICS: uniqueName('ff_events'),
        REDIS_URL: `redis://127.0.0.1:${port}`,
        CLICKHOUSE_URL: clickhouse.url,
        HTTP_PORT: '0',
        CONNECT_TIMEOUT_SECONDS: '3',
      },
    });
    expectOneLineFailure(run, new RegExp(`^sessionizer: cannot reach Redis at 127\\.0\\.0\\.1:${port}: connection refused\\. Check REDIS_URL`));
  }, 30_000);

  it('worker: a missing topic is named, with how to create it', async () => {
    const { brokers } = await getKafka();
    const clickhouse = await getClickHouse();
    const topic = uniqueName('ff_missing');
    const run = await runCli(['worker'], {
      env: {
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_TOPICS: topic,
        KAFKA_DEAD_LETTER_TOPIC: `${topic}_dlq`,
        REDIS_URL: getRedisUrl(),
        CLICKHOUSE_URL: clickhouse.url,
        HTTP_PORT: '0',
      },
    });
    expectOneLineFailure(run, new RegExp(`^sessionizer: topics ${topic}, ${topic}_dlq missing on Kafka at .*--create --topic NAME.*KAFKA_CREATE_TOPICS=true`));
  }, 60_000);
});

describe('configuration and input, before any connection', () => {
  it('bad KAFKA_BROKERS and KAFKA_TOPICS are listed with every other problem (exit 2)', async () => {
    const run = await runCli(['produce', '--input', join(REPO, 'examples', 'events.ndjson')], {
      env: { KAFKA_BROKERS: 'kafka://k1:9092,k2', KAFKA_TOPICS: 'ok,not ok', SHUTDOWN_TIMEOUT_SECONDS: 'soon' },
    });
    expect(run.code).toBe(2);
    const line = run.stderr.trim();
    expect(line.split('\n')).toHaveLength(1);
    for (const part of ["'kafka://k1:9092' is not host:port", "'k2' is not host:port", 'KAFKA_TOPICS.1', 'SHUTDOWN_TIMEOUT_SECONDS']) expect(line).toContain(part);
  }, 30_000);

  it('produce with nothing to send does not connect (no broker needed)', async () => {
    const port = await closedPort();
    const input = join(work, 'nothing.ndjson');
    writeFileSync(input, '\nnot json\n[1,2]\n\n');
    const run = await runCli(['produce', '--input', input], { env: { KAFKA_BROKERS: `127.0.0.1:${port}` } });
    // Nothing to send at all is an unusable input (exit 2), found without a broker.
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('line 2: skipped, not JSON');
    expect(run.stderr).toContain('line 3: skipped, not a JSON object');
    expect(run.stderr).toMatch(/none of its 4 lines is a valid event/);
    expect(run.ms).toBeLessThan(10_000);
  }, 30_000);

  it('--version prints the package version', async () => {
    const run = await runCli(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe((JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version);
  }, 30_000);
});
