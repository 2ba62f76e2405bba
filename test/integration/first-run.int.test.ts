/**
 * A first run as the README tells it: the shipped examples, produced with `--redate`, go through
 * the real worker into ClickHouse, and every query of docs/queries.md — the people ones
 * included, found in the markdown so a new query is covered by itself — returns rows for the
 * site `default`; people on several devices give `report --people` a cross-device share above 0.
 * (Without --redate the examples are from May 2024 and the "last 30 days" queries find nothing.)
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runMigrate } from '../../src/commands/migrate-command';
import { runProduce } from '../../src/commands/produce-command';
import { loadConfig } from '../../src/config';
import { peopleReport } from '../../src/people/people-report';
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
  const lines = readFileSync(examples, 'utf8').split('\n').filter(Boolean);
  const kib = (statSync(examples).size / 1024).toFixed(1).replace('.', '\\.');
  const reports: string[] = [];
  // No terminal: progress comes as plain lines (every 10 s by default; every 20 ms here).
  const stats = await runProduce(
    { input: examples, redate: true },
    { config: loadConfig({ ...env, LOG_LEVEL: 'warn' }), log: (t) => void reports.push(t), progress: false, progressIntervalMs: 20 },
  );
  expect(stats.redatedDays).toBeGreaterThan(900);
  const progress = new RegExp(`^produce: [\\d.]+ (B|KiB) of ${kib} KiB \\(\\d+%\\) read, \\d+ lines, \\d+ sent, \\d+ skipped\\n$`);
  expect(reports.filter((t) => progress.test(t)).length).toBeGreaterThan(0);
  expect(reports.at(-1)).toMatch(new RegExp(`^produce: ${lines.length} events sent to .*, 0 lines skipped, timestamps moved [\\d.]+ days forward`));

  const events = lines.map((l) => JSON.parse(l) as RawEvent);
  const recomputed = await recomputeRecords(events);
  const expected = recomputed.length;
  const worker = new WorkerProcess(env);
  const redis = createRedis();
  try {
    await worker.ready();
    const current = async () =>
      Number(((await (await db.client.query({ query: 'SELECT count() AS n FROM sessions FINAL WHERE sign = 1', format: 'JSONEachRow' })).json<{ n: string }>())[0] as { n: string }).n);
    await waitFor(async () => (await current()) === expected, 90_000, async () => `${await current()} of ${expected} sessions; ${worker.output.slice(-1500)}`);

    const markdown = readFileSync(join(REPO, 'docs', 'queries.md'), 'utf8');
    const blocks = sqlBlocks(markdown);
    expect(blocks.length).toBeGreaterThanOrEqual(19);
    expect(blocks.some((b) => b.sql.includes('person_sessions'))).toBe(true);
    const empty: string[] = [];
    for (const block of blocks) {
      const rows = await (await db.client.query({ query: block.sql, query_params: { site: 'default' }, format: 'JSONEachRow' })).json();
      if (rows.length === 0) empty.push(block.heading);
    }
    expect(empty).toEqual([]);

    // The docs' customer: u-1042's journey spans the phone, the laptop, the app and a store.
    const journey = await (
      await db.client.query({ query: "SELECT channel, user_key FROM person_sessions WHERE site = 'default' AND person_id = 'u-1042' ORDER BY person_session_number", format: 'JSONEachRow' })
    ).json<{ channel: string; user_key: string }>();
    expect(new Set(journey.map((s) => s.user_key))).toEqual(new Set(['anon-88', 'anon-5b1e', 'app-ios-9c4d', 'u-1042']));
    expect(new Set(journey.map((s) => s.channel))).toEqual(new Set(['web', 'app', 'store']));

    // Three sites: the shop's events carry no site (default); the blog's and the help centre's
    // sessions are theirs alone, as many as recompute makes.
    const bySite = await (
      await db.client.query({ query: 'SELECT site, count() AS n FROM sessions FINAL WHERE sign = 1 GROUP BY site ORDER BY site', format: 'JSONEachRow' })
    ).json<{ site: string; n: string }>();
    const recomputedBySite = new Map<string, number>();
    for (const r of recomputed) recomputedBySite.set(r.site, (recomputedBySite.get(r.site) ?? 0) + 1);
    expect(bySite.map((r) => [r.site, Number(r.n)])).toEqual([...recomputedBySite].sort(([a], [b]) => a.localeCompare(b)));
    expect(bySite.map((r) => r.site)).toEqual(['blog', 'default', 'help']);
    const firstQuery = (blocks[0] as { sql: string }).sql;
    for (const site of ['blog', 'help']) {
      expect(await (await db.client.query({ query: firstQuery, query_params: { site }, format: 'JSONEachRow' })).json()).not.toEqual([]);
    }

    // `report --people`: people on several devices, so the cross-device share is not 0.
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const people = await peopleReport(db.client, db.name, { from: day(-29), to: day(0), site: 'default' });
    const total = people.reduce((n, r) => n + r.people, 0);
    const crossDevice = people.reduce((n, r) => n + r.crossDevicePeople, 0);
    expect(total).toBeGreaterThan(0);
    expect(crossDevice / total).toBeGreaterThan(0);
  } finally {
    await worker.kill();
    await deleteRedisKeys(redis, prefix);
    redis.disconnect();
  }
}, 240_000);
