/**
 * `sessionizer recompute --since D --sink clickhouse` against real Kafka, Redis and ClickHouse,
 * next to a live worker (a child process): events streamed through the worker, then events too
 * late for streaming written straight into `events` (bridging sessions, starting sessions before
 * existing ones so numbers shift, moving a session's start across D); after recalculation
 * `sessions FINAL WHERE sign = 1` must equal `recompute` over all events, field for field; a
 * rerun must change nothing; and the worker must number what it streams next after what
 * recalculation found. A second case changes T.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { createClickHouseClient as createRecalcClickHouseClient } from '../../src/clickhouse/client';
import { migrate } from '../../src/clickhouse/migrations';
import { toEventRow } from '../../src/clickhouse/event-row';
import { ClickHouseSink } from '../../src/clickhouse/session-sink';
import { runRecalculation } from '../../src/commands/recompute-command';
import { loadConfig } from '../../src/config';
import { parseSessionEvent, validateEvent } from '../../src/events/parse-event';
import { applyEvent, newKeyState, reconcile } from '../../src/engine/engine';
import { generateTraffic, type RawEvent } from '../../src/loadgen/traffic';
import { ClickHouseSource } from '../../src/recalc/clickhouse-source';
import { recalculate } from '../../src/recalc/recalculate';
import { decodeIdleRecord, decodeState, encodeIdleRecord, encodeState } from '../../src/state/codec';
import { PartitionKeys } from '../../src/state/keys';
import { defineStateCommands } from '../../src/state/script-loader';
import { UserCounterStore, type FoundState } from '../../src/state/user-counters';
import { createClickHouseClient, createKafka, deleteRedisKeys, getRedisUrl, newRedisPrefix, uniqueName } from '../support';
import {
  WorkerProcess,
  createTopic,
  currentSessions,
  produce,
  recomputeRecords,
  waitFor,
  waitForSessions,
  withoutOpenFlag,
  workerEnv,
} from '../support/worker-harness';

jest.setTimeout(120_000);

const REPO = join(__dirname, '..', '..');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const PARTITIONS = 4;
const t0 = Date.parse('2024-05-01T10:00:00Z');

const timeOf = (e: RawEvent) => (typeof e.timestamp === 'number' ? e.timestamp : Date.parse(String(e.timestamp)));

/**
 * The hand-written events in time order, slipped into generated traffic (keeping its own slight
 * disorder) where their time comes: as a live stream brings them, nothing late for the worker.
 */
function interleave(handwritten: RawEvent[], generated: RawEvent[]): RawEvent[] {
  const pending = [...handwritten].sort((a, b) => timeOf(a) - timeOf(b));
  const out: RawEvent[] = [];
  for (const event of generated) {
    while (pending.length > 0 && timeOf(pending[0] as RawEvent) <= timeOf(event)) out.push(pending.shift() as RawEvent);
    out.push(event);
  }
  return [...out, ...pending];
}

function ev(id: string, key: string, at: number, extra: Record<string, unknown> = {}): RawEvent {
  return { event_id: id, type: 'page_view', timestamp: new Date(at).toISOString(), anonymous_id: key, page: { path: `/${id}` }, ...extra };
}

describe('recompute --since --sink clickhouse', () => {
  let kafka: Kafka;
  let admin: ClickHouseClient;
  let redis: Redis;
  const workers: WorkerProcess[] = [];
  const prefixes: string[] = [];

  beforeAll(async () => {
    kafka = await createKafka('recalc-test');
    admin = await createClickHouseClient();
    redis = defineStateCommands(new Redis(getRedisUrl(), { maxRetriesPerRequest: 3 }));
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill()));
  });
  afterAll(async () => {
    // State keys begin with their hash tag: `{prefix:topic:partition}…`.
    for (const prefix of prefixes) await deleteRedisKeys(redis, `{${prefix}`);
    await redis.quit();
    await admin.close();
  });

  async function setUp(name: string, timeoutMinutes: number, latenessMinutes: number) {
    const topic = uniqueName(name);
    const database = uniqueName(name);
    const redisPrefix = newRedisPrefix(name);
    prefixes.push(redisPrefix);
    await createTopic(kafka, topic, PARTITIONS);
    await migrate(admin, { database, cluster: '' });
    const env = await workerEnv({ topic, groupId: uniqueName(`${name}_group`), redisPrefix, database, timeoutMinutes, latenessMinutes });
    const counters = new UserCounterStore(redis, redisPrefix, [topic], 86_400);
    const start = (overrides: Record<string, string> = {}) => {
      const worker = new WorkerProcess({ ...env, ...overrides });
      workers.push(worker);
      return worker;
    };
    return { topic, database, env, counters, start };
  }

  /** One event per partition at `at` (explicit partitions): moves every partition's watermark. */
  async function produceToEachPartition(topic: string, events: (partition: number) => RawEvent): Promise<void> {
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      const messages = Array.from({ length: PARTITIONS }, (_, partition) => {
        const event = events(partition);
        return { partition, key: String(event.anonymous_id), value: JSON.stringify(event) };
      });
      await producer.send({ topic, messages, acks: -1 });
    } finally {
      await producer.disconnect();
    }
  }

  /** Events too late for streaming, stored as the worker stores every consumed event (no Kafka coordinates). */
  async function insertLateEvents(database: string, events: readonly RawEvent[]): Promise<void> {
    const rows = events.map((event) => {
      const raw = JSON.stringify(event);
      const parsed = validateEvent(JSON.parse(raw));
      if (!parsed.ok) throw parsed.error;
      return toEventRow(parsed.valid, raw);
    });
    await new ClickHouseSink(admin, database).insertEvents(rows, `late-${rows[0]?.event_id}-${rows.length}`);
  }

  async function countRows(database: string): Promise<number> {
    const result = await admin.query({ query: `SELECT count() AS n FROM ${database}.sessions`, format: 'JSONEachRow' });
    const [row] = (await result.json()) as Array<{ n: string }>;
    return Number(row?.n ?? 0);
  }

  async function stateOf(counters: UserCounterStore, userKey: string): Promise<FoundState> {
    const [found, ...more] = (await counters.locate([userKey])).get(userKey) ?? [];
    if (!found || more.length > 0) throw new Error(`expected one state for ${userKey}, found ${more.length + (found ? 1 : 0)}`);
    return found;
  }

  /** `sessionizer recompute --since ... --sink clickhouse` as a user runs it. */
  function runCli(env: Record<string, string>, since: string): Promise<{ code: number | null; output: string }> {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(REPO, 'src', 'cli.ts'), 'recompute', '--since', since, '--sink', 'clickhouse'], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
  }

  it('merges, splits and renumbers from late events; a rerun changes nothing; the worker numbers new sessions after them', async () => {
    const { topic, database, env, counters, start } = await setUp('recalc', 1, 10);
    const since = t0 + 30 * MINUTE; // D
    const generated = [
      ...generateTraffic({ users: 60, startMs: t0, spanMs: 170 * MINUTE, timeoutMs: MINUTE, duplicateRate: 0.02, disorderMs: 30 * SECOND, seed: 21, idPrefix: 'g-' }),
    ];
    // The stream's last minute: every partition's watermark ends here (pushers), and live-user's
    // last session just before it, so the worker still holds that session.
    const end = Math.ceil((Math.max(...generated.map(timeOf)) + 5 * MINUTE) / MINUTE) * MINUTE;
    const handwritten: RawEvent[] = [
      // merge: 05:00 | 40:00 40:30 | 42:00 | 1:30:00 — a late 41:15 bridges the two in the middle
      ev('m1', 'merge-user', t0 + 5 * MINUTE),
      ev('m2', 'merge-user', t0 + 40 * MINUTE),
      ev('m3', 'merge-user', t0 + 40 * MINUTE + 30 * SECOND),
      ev('m4', 'merge-user', t0 + 42 * MINUTE),
      ev('m5', 'merge-user', t0 + 90 * MINUTE),
      // shift: 10:00 | 50:00 | 1:00:00 — a late 35:00 starts a session before the two after D
      ev('s1', 'shift-user', t0 + 10 * MINUTE),
      ev('s2', 'shift-user', t0 + 50 * MINUTE),
      ev('s3', 'shift-user', t0 + 60 * MINUTE),
      // boundary: 05:00 | 29:00 29:40 30:20 (open at D) | 45:00 — a late 28:30 moves the start (and id)
      ev('b1', 'boundary-user', t0 + 5 * MINUTE),
      ev('b2', 'boundary-user', t0 + 29 * MINUTE),
      ev('b3', 'boundary-user', t0 + 29 * MINUTE + 40 * SECOND),
      ev('b4', 'boundary-user', t0 + 30 * MINUTE + 20 * SECOND),
      ev('b5', 'boundary-user', t0 + 45 * MINUTE),
      // live: 15:00 | 45:00 | 55:00 | end-2:00 end-1:40 (still held by the worker) — a late 40:00
      ev('l1', 'live-user', t0 + 15 * MINUTE),
      ev('l2', 'live-user', t0 + 45 * MINUTE),
      ev('l3', 'live-user', t0 + 55 * MINUTE),
      ev('l4', 'live-user', end - 2 * MINUTE),
      ev('l5', 'live-user', end - 2 * MINUTE + 20 * SECOND),
      // compact: 35:00 | 1:10:00, both forgotten by the worker — a late 50:00
      ev('c1', 'compact-user', t0 + 35 * MINUTE),
      ev('c2', 'compact-user', t0 + 70 * MINUTE),
    ];
    const streamed = interleave(handwritten, generated);
    const pusher = (partition: number) => ev(`p${partition}`, `pusher-${partition}`, end);
    const pushers = Array.from({ length: PARTITIONS }, (_, p) => pusher(p));

    const worker = start();
    await worker.ready();
    await produce(kafka, topic, streamed);
    await produceToEachPartition(topic, pusher);
    await waitForSessions(admin, database, await recomputeRecords([...streamed, ...pushers], 1), 60_000, () => worker.output);

    // What the scenario relies on: the worker still holds live-user's last session (it forgot the
    // three before); compact-user is a compact record.
    await waitFor(async () => (await stateOf(counters, 'live-user')).state.forgottenCount === 3, 30_000, () => worker.output);
    await waitFor(async () => (await stateOf(counters, 'compact-user')).state.forgottenCount === 2, 30_000, () => worker.output);
    expect((await stateOf(counters, 'live-user')).state.sessions).toHaveLength(1);
    expect((await stateOf(counters, 'compact-user')).state.sessions).toEqual([]);

    const late: RawEvent[] = [
      ev('m-late', 'merge-user', t0 + 41 * MINUTE + 15 * SECOND),
      ev('m3', 'merge-user', t0 + 40 * MINUTE + 30 * SECOND), // a copy of a streamed event: counts once
      ev('s-late', 'shift-user', t0 + 35 * MINUTE),
      ev('b-late', 'boundary-user', t0 + 28 * MINUTE + 30 * SECOND),
      ev('l-late', 'live-user', t0 + 40 * MINUTE),
      ev('c-late', 'compact-user', t0 + 50 * MINUTE, { campaign: { source: 'newsletter', medium: 'email' } }),
      // never streamed: only ever written to `events` (an import)
      ev('n1', 'new-user', t0 + 80 * MINUTE),
      ev('n2', 'new-user', t0 + 80 * MINUTE + 30 * SECOND),
      ev('n3', 'new-user', t0 + 100 * MINUTE),
    ];
    await insertLateEvents(database, late);

    // Interrupted after its first page of 10 users (as SIGINT does), then run to the end by the CLI.
    const config = loadConfig(env);
    const clickhouse = createRecalcClickHouseClient(config.clickhouse);
    const stop = new AbortController();
    const partial = await recalculate(
      { source: new ClickHouseSource(clickhouse, database), sink: new ClickHouseSink(clickhouse, database), counters },
      { sinceMs: since, timeoutMs: MINUTE, latenessMs: 10 * MINUTE, pageUsers: 10, signal: stop.signal, onProgress: () => stop.abort() },
    );
    await clickhouse.close();
    expect(partial).toMatchObject({ interrupted: true, users: 10 });
    expect(partial.totalUsers).toBeGreaterThan(10);
    expect(partial.rowsWritten).toBeGreaterThan(0); // boundary-user and compact-user come first

    let started = Date.now();
    const cli = await runCli(env, new Date(since).toISOString());
    console.log(`recalculation (CLI, ts-node): ${Date.now() - started} ms\n${cli.output.trim()}`);
    expect(cli.code).toBe(0);

    // The worker's counters now follow what recalculation found.
    const liveAfter = await stateOf(counters, 'live-user');
    expect(liveAfter.state.forgottenCount).toBe(4);
    expect(liveAfter.state.sessions).toHaveLength(1);
    expect((await stateOf(counters, 'compact-user')).state.forgottenCount).toBe(3);
    expect((await counters.locate(['new-user'])).get('new-user')).toBeUndefined();

    // live-user's last session is the worker's: it renumbers it once it reloads the partition.
    // Its fenced processor re-claims on its next batch; a redelivered event (a no-op) brings one.
    await produceToEachPartition(topic, pusher);
    const all = [...streamed, ...pushers, ...late];
    const expected = await recomputeRecords(all, 1);
    await waitForSessions(admin, database, expected, 30_000, () => worker.output);
    const byUser = (key: string) => expected.filter((s) => s.user_key === key).map((s) => [s.session_number, s.events]);
    expect(byUser('merge-user')).toEqual([[1, 1], [2, 4], [3, 1]]);
    expect(byUser('shift-user')).toEqual([[1, 1], [2, 1], [3, 1], [4, 1]]);
    expect(byUser('boundary-user')).toEqual([[1, 1], [2, 4], [3, 1]]);
    expect(byUser('live-user')).toEqual([[1, 1], [2, 1], [3, 1], [4, 1], [5, 2]]);

    // Rerun: nothing to write, no counter to set, the table unchanged.
    const rowsBefore = await countRows(database);
    const finalBefore = await currentSessions(admin, database);
    started = Date.now();
    const rerun = await runRecalculation(loadConfig(env), { sinceMs: since });
    console.log(`rerun (in process): ${Date.now() - started} ms`);
    expect(rerun).toMatchObject({ rowsWritten: 0, countersAdjusted: 0, changed: 0, added: 0, vanished: 0, interrupted: false, unsettled: [] });
    expect(rerun.users).toBe(rerun.totalUsers);
    expect(await countRows(database)).toBe(rowsBefore);
    expect(await currentSessions(admin, database)).toEqual(finalBefore);

    // The worker numbers what comes next after what recalculation found.
    const more = [
      ev('m6', 'merge-user', end + 5 * MINUTE),
      ev('s4', 'shift-user', end + 5 * MINUTE),
      ev('b6', 'boundary-user', end + 6 * MINUTE),
      ev('l6', 'live-user', end - 2 * MINUTE + 40 * SECOND), // extends the worker's session
      ev('l7', 'live-user', end + 10 * MINUTE),
      ev('c3', 'compact-user', end + 5 * MINUTE),
    ];
    await produce(kafka, topic, more);
    const expectedMore = await recomputeRecords([...all, ...more], 1);
    await waitForSessions(admin, database, expectedMore, 30_000, () => worker.output);
    const next = (key: string) => expectedMore.filter((s) => s.user_key === key).slice(-1)[0];
    expect(next('merge-user')).toMatchObject({ session_number: 4 });
    expect(next('compact-user')).toMatchObject({ session_number: 4, previous_session_id: expected.filter((s) => s.user_key === 'compact-user')[2]?.session_id });
    expect(next('live-user')).toMatchObject({ session_number: 6 });
    expect(await worker.stop()).toBe(0);
  });

  it('applies a changed session timeout from D on, and the worker restarted with it numbers on from there', async () => {
    const { topic, database, env, counters, start } = await setUp('recalc_t', 1, 10);
    const events = [...generateTraffic({ users: 40, startMs: t0, spanMs: 2 * HOUR, timeoutMs: 2 * MINUTE, duplicateRate: 0.02, disorderMs: 20 * SECOND, seed: 22, idPrefix: 't-' })];
    // A day after the traffic on every partition: everything before is forgotten, kept as compact records.
    const later = Math.max(...events.map(timeOf)) + 24 * HOUR;
    const pushers = Array.from({ length: PARTITIONS }, (_, p) => ev(`p${p}`, `pusher-${p}`, later));
    const first = start();
    await first.ready();
    await produce(kafka, topic, events);
    await produceToEachPartition(topic, (p) => pushers[p] as RawEvent);
    await waitForSessions(admin, database, await recomputeRecords([...events, ...pushers], 1), 60_000, () => first.output);
    expect(await first.stop()).toBe(0);

    // T goes from 1 to 3 minutes: recalculate everything with it (the worker is down meanwhile).
    const newT = { SESSION_TIMEOUT_MINUTES: '3' };
    const started = Date.now();
    const stats = await runRecalculation(loadConfig({ ...env, ...newT }), { sinceMs: t0 - HOUR });
    console.log(`changed-T recalculation (in process): ${Date.now() - started} ms, ${JSON.stringify({ ...stats, unsettled: stats.unsettled.length })}`);
    expect(stats.changed + stats.vanished).toBeGreaterThan(0);
    const all = [...events, ...pushers];
    const expected = await recomputeRecords(all, 3);
    expect(expected.length).toBeLessThan((await recomputeRecords(all, 1)).length);
    expect(withoutOpenFlag(await currentSessions(admin, database))).toEqual(expected);

    // Every compact record counts the user's sessions under the new T.
    const someUser = (expected.find((s) => s.user_key.startsWith('t-anon-') && s.session_number > 1) as { user_key: string }).user_key;
    const theirs = expected.filter((s) => s.user_key === someUser);
    expect((await stateOf(counters, someUser)).state).toMatchObject({
      sessions: [],
      forgottenCount: theirs.length,
      forgottenLastId: theirs[theirs.length - 1]?.session_id,
    });

    // The worker, now with T = 3, numbers a returning user's next session after them.
    const worker = start(newT);
    await worker.ready();
    const back = [ev('back-1', someUser, later + 5 * MINUTE), ev('back-2', someUser, later + 7 * MINUTE)];
    await produce(kafka, topic, back);
    const expectedBack = await recomputeRecords([...all, ...back], 3);
    await waitForSessions(admin, database, expectedBack, 30_000, () => worker.output);
    expect(expectedBack.filter((s) => s.user_key === someUser).slice(-1)[0]).toMatchObject({ session_number: theirs.length + 1, events: 2 });

    // And a rerun with the new T changes nothing.
    const rowsBefore = await countRows(database);
    const rerun = await runRecalculation(loadConfig({ ...env, ...newT }), { sinceMs: t0 - HOUR });
    expect(rerun).toMatchObject({ rowsWritten: 0, countersAdjusted: 0 });
    expect(await countRows(database)).toBe(rowsBefore);
    expect(await worker.stop()).toBe(0);
  });

  it('adjustUserCounters sets each value only if unchanged (state key or idle record), keeps its expiry, marks the user due and fences the partition once', async () => {
    const prefix = newRedisPrefix('adjust');
    prefixes.push(prefix);
    const keys = new PartitionKeys(prefix, 'events', 3);
    await redis.hset(keys.meta, 'epoch', '7-abc', 'epochs', '7', 'watermark', String(t0));
    const live = newKeyState('a');
    const event = parseSessionEvent(JSON.stringify(ev('e1', 'a', t0)));
    if (event instanceof Error) throw event;
    applyEvent(live, event, { timeoutMs: MINUTE, latenessMs: HOUR }, t0);
    reconcile(live, { timeoutMs: MINUTE, latenessMs: HOUR }, t0);
    const liveValue = encodeState(live);
    await redis.set(keys.user('a'), liveValue, 'EX', 1000);
    await redis.set(keys.user('b'), '{"c":1,"l":"x"}', 'EX', 1000); // a compact record of an earlier release
    // An idle record that has expired (not swept yet): as good as none.
    await redis.hset(`${keys.idle}0`, 'd', encodeIdleRecord({ count: 9, lastId: 'old', expiresAtMinute: 1 }));
    await redis.hset(keys.meta, 'idle_count', '1');
    const store = new UserCounterStore(redis, prefix, ['events'], 5000);
    const [partition, ...others] = await store.partitions();
    expect(others).toEqual([]);
    expect(partition).toMatchObject({ topic: 'events', partition: 3 });
    if (!partition) return;
    expect([...(await store.locate(['a', 'b', 'c', 'd'])).keys()]).toEqual(['a', 'b']);

    const changed = await store.adjust(partition, [
      { userKey: 'a', expected: { where: 'key', bytes: liveValue }, count: 5, lastId: 'p', due: true },
      { userKey: 'b', expected: { where: 'key', bytes: Buffer.from('{"c":0,"l":""}') }, count: 2, lastId: 'q', due: false }, // changed since read
      { userKey: 'c', expected: null, count: 3, lastId: 'r', due: false }, // nothing stored yet: an idle record
      { userKey: 'd', expected: null, count: 4, lastId: 's', due: false }, // replaces the expired record
    ]);
    expect(changed).toEqual(['b']);
    expect(await redis.hget(keys.meta, 'epoch')).toBe('recalc-8'); // no worker holds this epoch
    const a = decodeState('a', (await redis.getBuffer(keys.user('a'))) as Buffer);
    expect(a).toMatchObject({ forgottenCount: 5, forgottenLastId: 'p' });
    expect(a.sessions).toEqual(live.sessions);
    expect(await redis.ttl(keys.user('a'))).toBeGreaterThan(900);
    expect(await redis.ttl(keys.user('a'))).toBeLessThanOrEqual(1000);
    expect(await redis.zscore(keys.closeDeadlines, 'a')).toBe('0');
    expect(await redis.get(keys.user('b'))).toBe('{"c":1,"l":"x"}');
    expect(await redis.exists(keys.user('c'), keys.user('d'))).toBe(0);
    const located = await store.locate(['c', 'd']);
    const c = located.get('c')?.[0] as FoundState;
    expect(c.stored.where).toBe('idle');
    expect(c.state).toMatchObject({ sessions: [], forgottenCount: 3, forgottenLastId: 'r' });
    const expiry = decodeIdleRecord(c.stored.bytes).expiresAtMinute;
    expect(expiry * MINUTE).toBeGreaterThan(Date.now() + 4900 * SECOND);
    expect(located.get('d')?.[0]?.state).toMatchObject({ forgottenCount: 4, forgottenLastId: 's' });
    expect(await redis.hget(keys.meta, 'idle_count')).toBe('2'); // c new, d replaced
    expect(await redis.zscore(keys.closeDeadlines, 'c')).toBeNull();

    // Nothing written: the owner is not fenced.
    expect(await store.adjust(partition, [{ userKey: 'b', expected: { where: 'key', bytes: Buffer.from('{"c":9,"l":"z"}') }, count: 2, lastId: 'q', due: false }])).toEqual(['b']);
    expect(await redis.hget(keys.meta, 'epoch')).toBe('recalc-8');

    // An idle record is compare-and-set too, and keeps its expiry.
    expect(await store.adjust(partition, [{ userKey: 'c', expected: c.stored, count: 6, lastId: 't', due: false }])).toEqual([]);
    expect(await store.adjust(partition, [{ userKey: 'c', expected: c.stored, count: 7, lastId: 'u', due: false }])).toEqual(['c']);
    const again = (await store.locate(['c'])).get('c')?.[0] as FoundState;
    expect(again.state).toMatchObject({ forgottenCount: 6, forgottenLastId: 't' });
    expect(decodeIdleRecord(again.stored.bytes).expiresAtMinute).toBe(expiry);
    expect(await redis.hget(keys.meta, 'epoch')).toBe('recalc-9');
  });
});
