/**
 * `sessionizer produce` against a real Kafka: a file goes in line by line, keyed by user key,
 * every visitor on one partition, lines that are not JSON objects skipped and reported; and the
 * command line's exit codes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { classifyLine, runProduce } from '../../src/commands/produce-command';
import { loadConfig } from '../../src/config';
import { createKafka, getKafka, uniqueName } from '../support';
import { readTopic, type ReadMessage } from '../support/read-topic';
import { createTopic } from '../support/worker-harness';

const REPO = join(__dirname, '..', '..');
const EXAMPLE = join(REPO, 'examples', 'events.ndjson');

let kafka: Kafka;
let brokers: string;
let work = '';

beforeAll(async () => {
  kafka = await createKafka(uniqueName('produce_test'));
  brokers = (await getKafka()).brokers.join(',');
  work = mkdtempSync(join(tmpdir(), 'produce-test-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));


function userKey(json: Record<string, unknown>): string | null {
  return (json.anonymous_id as string) || (json.user_id as string) || null;
}

describe('produce', () => {
  it('sends the example file keyed by user key, one partition per visitor, skipping lines that are not JSON objects', async () => {
    const topic = uniqueName('produce');
    await createTopic(kafka, topic, 4);
    const example = readFileSync(EXAMPLE, 'utf8').split('\n').filter(Boolean);
    const extra = [
      'not json at all',
      '["an","array"]',
      '',
      '{"event_id":"no-ids","type":"page_view","timestamp":1714564800000}',
      '42',
    ];
    const lines = [...example.slice(0, 1000), ...extra, ...example.slice(1000)];
    const input = join(work, 'events.ndjson');
    writeFileSync(input, lines.join('\n') + '\n');

    const reports: string[] = [];
    const stats = await runProduce(
      { input },
      { config: loadConfig({ KAFKA_BROKERS: brokers, KAFKA_TOPICS: `${topic},other`, LOG_LEVEL: 'warn' }), log: (t) => void reports.push(t), progress: false },
    );
    const sendable = example.length + 1; // the object without ids is sent: the worker dead-letters it
    expect(stats).toEqual({ topic, lines: lines.length, sent: sendable, skipped: 3, redatedDays: 0 });
    const text = reports.join('');
    expect(text).toContain('line 1001: skipped, not JSON');
    expect(text).toContain('line 1002: skipped, not a JSON object');
    expect(text).toContain('line 1005: skipped, not a JSON object');
    expect(text).toMatch(new RegExp(`produce: ${sendable} events sent to ${topic}, 3 lines skipped`));

    const messages = await readTopic(kafka, topic, sendable);
    expect(messages).toHaveLength(sendable);
    const partitionOfKey = new Map<string, number>();
    for (const m of messages) {
      const json = JSON.parse(m.value) as Record<string, unknown>;
      expect(m.key).toBe(userKey(json));
      if (m.key === null) continue;
      const seen = partitionOfKey.get(m.key);
      if (seen !== undefined) expect(m.partition).toBe(seen);
      partitionOfKey.set(m.key, m.partition);
    }
    // Values are the input lines, byte for byte, in file order within each partition.
    expect(new Set(messages.map((m) => m.value))).toEqual(new Set(example.concat(extra[3] as string)));
    for (const partition of [0, 1, 2, 3]) {
      const inPartition = messages.filter((m) => m.partition === partition).map((m) => m.value);
      const inFile = lines.filter((l) => inPartition.includes(l));
      expect(inPartition).toEqual(inFile);
    }
    expect(new Set(partitionOfKey.values()).size).toBeGreaterThan(1);
  }, 60_000);

  it('classifies lines: objects are sent with their key, the rest skipped or ignored', () => {
    expect(classifyLine('{"anonymous_id":"a","user_id":"u"}')).toEqual({ key: 'a', value: '{"anonymous_id":"a","user_id":"u"}' });
    expect(classifyLine('{"anonymous_id":"","user_id":"u"}')).toMatchObject({ key: 'u' });
    expect(classifyLine('{"anonymous_id":7}')).toMatchObject({ key: null });
    expect(classifyLine('   ')).toBeNull();
    expect(classifyLine('null')).toEqual({ skip: 'not a JSON object' });
    expect(classifyLine('{"a":')).toMatchObject({ skip: expect.stringMatching(/^not JSON \(/) as string });
    expect(classifyLine(JSON.stringify({ anonymous_id: 'a', big: 'x'.repeat(70_000) }))).toEqual({ skip: 'longer than the 64 KiB message limit' });
  });
});

describe('produce on the command line', () => {
  function cli(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(REPO, 'src', 'cli.ts'), ...args], {
        cwd: REPO,
        env: { ...process.env, ...env },
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, stderr }));
      child.stdin.end(stdin ?? '');
    });
  }

  it('reads stdin with --input -, creates the topic when KAFKA_CREATE_TOPICS is set, exits 0 with a count on stderr', async () => {
    const topic = uniqueName('produce_cli');
    const events = [1, 2, 3].map((i) => JSON.stringify({ event_id: `c${i}`, type: 'page_view', timestamp: 1714564800000 + i, anonymous_id: `v${i % 2}` }));
    const run = await cli(['produce', '--input', '-'], { KAFKA_BROKERS: brokers, KAFKA_TOPICS: topic, KAFKA_CREATE_TOPICS: 'true', KAFKA_TOPIC_PARTITIONS: '2' }, events.join('\n') + '\nnope\n');
    expect(run.stderr).toContain('line 4: skipped, not JSON');
    expect(run.stderr).toContain(`produce: 3 events sent to ${topic}, 1 lines skipped`);
    expect(run.code).toBe(0);
    const messages: ReadMessage[] = await readTopic(kafka, topic, 3);
    expect(messages.map((m) => m.key).sort()).toEqual(['v0', 'v1', 'v1']);
  }, 60_000);

  it('exits 2 with a one-line reason for an unreadable input or a missing --input, before connecting', async () => {
    const env = { KAFKA_BROKERS: '127.0.0.1:1' };
    const missing = await cli(['produce', '--input', join(work, 'nope.ndjson')], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/cannot read .*nope\.ndjson/);
    const directory = await cli(['produce', '--input', work], env);
    expect(directory.code).toBe(2);
    const usage = await cli(['produce'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("required option '--input <file>' not specified");
  }, 60_000);
});
