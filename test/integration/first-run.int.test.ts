/**
 * A first run as the README tells it: the shipped examples, produced with `--redate`, go through
 * the real worker into ClickHouse, and every analyst query of docs/queries.md returns rows.
 * (Without --redate the examples are from May 2024 and the "last 30 days" queries find nothing.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runMigrate } from '../../src/commands/migrate-command';
import { runProduce } from '../../src/commands/produce-command';
import { loadConfig } from '../../src/config';
import type { RawEvent } from '../../src/loadgen/traffic';
import { REPO } from '../support/cli';
import { createKafka, createRedis, deleteRedisKeys, getClickHouse, newRedisPrefix, uniqueName, useTestDatabase } from '../support';
import { createTopic, recomputeRecords, waitFor, WorkerProcess, workerEnv } from '../support/worker-harness';

const db = useTestDatabase('first_run');

function sqlBlocks(markdown: string): Array<{ heading: string; sql: string }> {
  const blocks: Array<{ heading: string; sql: string }> = [];
  let heading = '';
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] as string;
    if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
    if (line.trim() !== '```sql') continue;
    const end = lines.indexOf('```', i + 1);
    blocks.push({ heading, sql: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return blocks;
}

it('the analyst queries return rows on the shipped examples produced with --redate', async () => {
  const clickhouse = await getClickHouse();
  await runMigrate({ config: loadConfig({ CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_DATABASE: db.name }), log: () => undefined });
  const kafka = await createKafka();
  const topic = uniqueName('first_run');
  await createTopic(kafka, topic, 4);
  const prefix = newRedisPrefix('first_run').slice(0, -1);
  const env = await workerEnv({ topic, groupId: uniqueName('first_run_group'), redisPrefix: prefix, database: db.name });
  const examples = join(REPO, 'examples', 'events.ndjson');
  const reports: string[] = [];
  // No terminal: progress comes as plain lines (every 10 s by default; every 20 ms here).
  const stats = await runProduce(
    { input: examples, redate: true },
    { config: loadConfig({ ...env, LOG_LEVEL: 'warn' }), log: (t) => void reports.push(t), progress: false, progressIntervalMs: 20 },
  );
  expect(stats.redatedDays).toBeGreaterThan(900);
  expect(reports.filter((t) => /^produce: [\d.]+ (B|KiB) of 633\.\d KiB \(\d+%\) read, \d+ lines, \d+ sent, \d+ skipped\n$/.test(t)).length).toBeGreaterThan(0);
  expect(reports.at(-1)).toMatch(/^produce: 2317 events sent to .*, 0 lines skipped, timestamps moved [\d.]+ days forward/);

  const events = readFileSync(examples, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RawEvent);
  const expected = (await recomputeRecords(events)).length;
  const worker = new WorkerProcess(env);
  const redis = createRedis();
  try {
    await worker.ready();
    const current = async () =>
      Number(((await (await db.client.query({ query: 'SELECT count() AS n FROM sessions FINAL WHERE sign = 1', format: 'JSONEachRow' })).json<{ n: string }>())[0] as { n: string }).n);
    await waitFor(async () => (await current()) === expected, 90_000, async () => `${await current()} of ${expected} sessions; ${worker.output.slice(-1500)}`);

    const markdown = readFileSync(join(REPO, 'docs', 'queries.md'), 'utf8');
    // The People section's queries name one customer (u-1042) and a campaign (spring) of their
    // own worked example, which test/integration/clickhouse-queries.int.test.ts seeds and checks
    // row by row; on the shipped examples they must run, not return rows.
    const people = markdown.indexOf('\n## People');
    expect(people).toBeGreaterThan(0);
    const blocks = sqlBlocks(markdown.slice(0, people));
    expect(blocks.length).toBeGreaterThanOrEqual(10);
    const empty: string[] = [];
    for (const block of blocks) {
      const rows = await (await db.client.query({ query: block.sql, query_params: { site: 'default' }, format: 'JSONEachRow' })).json();
      if (rows.length === 0) empty.push(block.heading);
    }
    expect(empty).toEqual([]);
    const peopleBlocks = sqlBlocks(markdown.slice(people));
    expect(peopleBlocks.length).toBeGreaterThan(0);
    for (const block of peopleBlocks) await (await db.client.query({ query: block.sql, query_params: { site: 'default' }, format: 'JSONEachRow' })).json();
  } finally {
    await worker.kill();
    await deleteRedisKeys(redis, prefix);
    redis.disconnect();
  }
}, 240_000);
