/**
 * Backfill without surprises, against real Kafka, Redis and ClickHouse with a live worker:
 *
 * 1. History replayed through Kafka into a partition whose event time is already live is later
 *    than the allowed lateness: the worker keeps every event in `events` but sessionizes none of
 *    it (this is what the docs describe); `recompute --since` then makes the sessions right.
 * 2. `produce --backfill` (the supported way) writes the history to `events` and recalculates
 *    the users in the file: their sessions equal `recompute`, a live user's history is numbered
 *    before the session the worker holds (which the worker renumbers), and an event written into
 *    the part the worker owns is reported with how to finish it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../src/clickhouse/migrations';
import { runBackfill } from '../../src/commands/backfill-command';
import { runRecalculation, unfinishedReport } from '../../src/commands/recompute-command';
import { loadConfig } from '../../src/config';
import type { RawEvent } from '../../src/loadgen/traffic';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, newRedisPrefix, uniqueName } from '../support';
import {
  WorkerProcess,
  createTopic,
  currentSessions,
  produce,
  recomputeRecords,
  waitFor,
  withoutOpenFlag,
  workerEnv,
} from '../support/worker-harness';

jest.setTimeout(240_000);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function ev(id: string, key: string, at: number): RawEvent {
  return { event_id: id, type: 'page_view', timestamp: new Date(at).toISOString(), anonymous_id: key, page: { path: `/${id}` } };
}

/** Two sessions per user two days ago: three events, then one more after a 2 h pause. */
function history(prefix: string, users: number, start: number): RawEvent[] {
  const events: RawEvent[] = [];
  for (let u = 0; u < users; u++) {
    const key = `${prefix}${u}`;
    const at = start + u * MINUTE;
    events.push(ev(`${key}-1`, key, at), ev(`${key}-2`, key, at + 5 * MINUTE), ev(`${key}-3`, key, at + 12 * MINUTE), ev(`${key}-4`, key, at + 2 * HOUR));
  }
  return events;
}

let kafka: Kafka;
let admin: ClickHouseClient;
let worker: WorkerProcess | null = null;
let env: Record<string, string> = {};
let topic = '';
let database = '';
let work = '';
const redisPrefix = newRedisPrefix('backfill');
const now = Date.now();
const historyStart = now - 2 * DAY;

async function sessionsOf(prefix: string) {
  return withoutOpenFlag((await currentSessions(admin, database)).filter((s) => s.user_key.startsWith(prefix)));
}

async function countEvents(prefix: string): Promise<number> {
  const result = await admin.query({ query: `SELECT count() AS n FROM ${database}.events FINAL WHERE startsWith(user_key, {p:String})`, query_params: { p: prefix }, format: 'JSONEachRow' });
  return Number(((await result.json()) as Array<{ n: string }>)[0]?.n ?? 0);
}

beforeAll(async () => {
  kafka = await createKafka('backfill-test');
  admin = await createClickHouseClient();
  work = mkdtempSync(join(tmpdir(), 'backfill-test-'));
  topic = uniqueName('backfill');
  database = uniqueName('backfill');
  await createTopic(kafka, topic, 1);
  await migrate(admin, { database, cluster: '' });
  env = await workerEnv({ topic, groupId: uniqueName('backfill_group'), redisPrefix, database, timeoutMinutes: 30, latenessMinutes: 60 });
  // Live traffic first: the partition's event time is now.
  await produce(kafka, topic, [ev('live-1', 'live-a', now - 20 * MINUTE), ev('live-2', 'live-a', now - 10 * MINUTE)]);
  worker = new WorkerProcess(env);
  await waitFor(async () => (await sessionsOf('live-a')).length === 1, 60_000, () => worker?.output.slice(-3000) ?? '');
});
afterAll(async () => {
  await worker?.kill();
  await admin.close();
  const redis = createRedis();
  await deleteRedisKeys(redis, `{${redisPrefix}`);
  await redis.quit();
  rmSync(work, { recursive: true, force: true });
});

it('history replayed through Kafka after a live-dated event is all late: kept in events, no sessions; recompute --since repairs it', async () => {
  const replayed = history('kafka-', 15, historyStart);
  await produce(kafka, topic, replayed);
  await waitFor(async () => (await countEvents('kafka-')) === replayed.length, 60_000, () => worker?.output.slice(-3000) ?? '');
  // Give the worker's session rows (there must be none) time to land before looking.
  await produce(kafka, topic, [ev('live-3', 'live-b', now - 5 * MINUTE)]);
  await waitFor(async () => (await sessionsOf('live-b')).length === 1, 60_000);
  expect(await sessionsOf('kafka-')).toEqual([]);

  const stats = await runRecalculation(loadConfig(env), { sinceMs: historyStart });
  expect(stats.unsettled).toEqual([]);
  expect(await sessionsOf('kafka-')).toEqual(await recomputeRecords(replayed));
  // The live users' sessions stay the worker's: it holds all their events, so nothing is unfinished.
  expect(stats.leftToWorker).toBeGreaterThanOrEqual(2);
  expect(stats.unfinished.users).toBe(0);
});

it('produce --backfill sessionizes history for new and live users and reports what only a later run can finish', async () => {
  const fresh = history('fill-', 10, historyStart);
  const liveHistory = [ev('la-h1', 'live-a', historyStart), ev('la-h2', 'live-a', historyStart + 3 * HOUR)];
  // An event inside the session the worker holds for live-a, which the worker will never see.
  const intoLivePart = ev('la-x', 'live-a', now - 15 * MINUTE);
  const input = join(work, 'history.ndjson');
  writeFileSync(input, [...fresh, ...liveHistory, intoLivePart].map((e) => JSON.stringify(e)).join('\n') + '\n{"not":"an event"}\n');

  const reports: string[] = [];
  const stats = await runBackfill({ input }, { config: loadConfig(env), log: (text) => void reports.push(text) });
  expect(stats).toMatchObject({ events: fresh.length + 3, invalid: 1, users: 11, sinceMs: historyStart });
  expect(reports.join('')).toContain(`line ${fresh.length + 4}: skipped, event_id: is required`);
  const recalculation = stats.recalculation;
  if (!recalculation) throw new Error('no recalculation ran');
  expect(recalculation.totalUsers).toBe(11);
  expect(await sessionsOf('fill-')).toEqual(await recomputeRecords(fresh));

  // live-a: its two history sessions come first; the worker renumbers the one it holds as 3rd.
  const expectedHistory = await recomputeRecords(liveHistory);
  await waitFor(
    async () => {
      const rows = await sessionsOf('live-a');
      return rows.length === 3 && rows[2]?.session_number === 3 && rows[2]?.previous_session_id === expectedHistory[1]?.session_id;
    },
    60_000,
    async () => `live-a: ${JSON.stringify(await sessionsOf('live-a'))}\n${worker?.output.slice(-3000)}`,
  );
  expect((await sessionsOf('live-a')).slice(0, 2)).toEqual(expectedHistory);

  // la-x lies in the worker's part and the worker never got it: reported, with how to finish.
  expect(recalculation.unfinished).toMatchObject({ users: 1, examples: ['live-a'], firstEventMs: now - 15 * MINUTE });
  const report = unfinishedReport(recalculation, 30 * MINUTE, 60 * MINUTE) ?? '';
  expect(report).toContain(`recompute --since ${new Date(now - 15 * MINUTE).toISOString()} --sink clickhouse`);
  expect(recalculation.unfinished.rerunAfterMs).toBe(now - 10 * MINUTE + 30 * MINUTE + 60 * MINUTE);
});
