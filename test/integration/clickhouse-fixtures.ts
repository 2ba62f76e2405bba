/**
 * Shared by the clickhouse-*.int.test.ts files: a client made by our own factory for the test
 * ClickHouse, inserts and queries, and a stand-in for the worker that runs the real session
 * engine over events arriving out of order and returns the signed rows it would write
 * (starts, updates, ends, retractions, id changes), batch by batch.
 */
import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouseClient } from '../../src/clickhouse/client';
import { toEventRow, type EventRow } from '../../src/clickhouse/event-row';
import { ClickHouseSink, signedRows, type SignedSessionRow } from '../../src/clickhouse/session-sink';
import { loadConfig, type Config } from '../../src/config';
import { applyEvent, newKeyState, reconcile, type EngineConfig, type KeyState } from '../../src/engine/engine';
import { sessionIdOf, type SessionRow } from '../../src/engine/session-row';
import { visitorKeyOf } from '../../src/events/visitor-key';
import { parseEvent } from '../../src/events/parse-event';
import type { SessionEvent } from '../../src/events/session-event';
import { getClickHouse } from '../support';
import type { ReportTotals } from '../../src/clickhouse/report-queries';

export const TIMEOUT_MS = 30 * 60_000;

export async function clickHouseConfig(database: string, cluster = ''): Promise<Config['clickhouse']> {
  const { url, username, password } = await getClickHouse();
  return { url, username, password, database, cluster };
}

/** The whole configuration, as `loadConfig` makes it from an environment naming the test server. */
export async function configFor(database: string): Promise<Config> {
  const { url, username, password } = await getClickHouse();
  return loadConfig({ CLICKHOUSE_URL: url, CLICKHOUSE_USER: username, CLICKHOUSE_PASSWORD: password, CLICKHOUSE_DATABASE: database });
}

/** A client from src/clickhouse/client.ts (our settings), not bound to a database. */
export async function testClient(database: string): Promise<ClickHouseClient> {
  return createClickHouseClient(await clickHouseConfig(database), { application: 'sessionizer-test' });
}

export async function insertRows(
  client: ClickHouseClient,
  table: string,
  rows: readonly object[],
  token?: string,
): Promise<void> {
  await client.insert({
    table,
    values: rows as object[],
    format: 'JSONEachRow',
    clickhouse_settings: token === undefined ? {} : { insert_deduplication_token: token },
  });
}

/** `events` rows as the worker writes them (RowBinary, through ClickHouseSink). */
export async function insertEventRows(client: ClickHouseClient, database: string, rows: readonly EventRow[], token: string = randomUUID()): Promise<void> {
  await new ClickHouseSink(client, database).insertEvents(rows, token);
}

/**
 * Rows as JSON objects. 64-bit integers always come quoted (exact), whatever the server's
 * default for output_format_json_quote_64bit_integers (it changed in ClickHouse 25.x).
 */
export async function queryRows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const result = await client.query({
    query,
    query_params: params,
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
  });
  return result.json<T>();
}

/** Forces every merge now, so collapsing and summing have happened physically. */
export async function optimizeAll(client: ClickHouseClient, database: string): Promise<void> {
  for (const table of ['sessions', 'sessions_daily', 'users_daily', 'events']) {
    await client.command({ query: `OPTIMIZE TABLE ${database}.${table} FINAL` });
  }
}

/** A session row with plausible defaults; `session_id` follows from user_key and started_at. */
export function sessionRow(overrides: Partial<SessionRow> & { user_key: string; started_at: string }): SessionRow {
  const started = Date.parse(overrides.started_at);
  const duration = overrides.duration_ms ?? 0;
  const base: SessionRow = {
    site: overrides.site ?? 'default',
    session_id: sessionIdOf(visitorKeyOf(overrides.site ?? 'default', overrides.user_key), started),
    user_key: overrides.user_key,
    anonymous_id: overrides.user_key,
    user_id: '',
    started_at: overrides.started_at,
    ended_at: new Date(started + duration).toISOString(),
    duration_ms: duration,
    events: 1,
    views: 1,
    entry_page: '/',
    exit_page: '/',
    source: '(direct)',
    medium: '(none)',
    campaign: '',
    term: '',
    content: '',
    channel: 'web',
    device_type: 'desktop',
    os: 'Linux',
    browser: 'Firefox',
    app_version: '',
    country: 'DE',
    region: '',
    city: '',
    is_engaged: 0,
    is_bounce: 1,
    session_number: 1,
    previous_session_id: '',
    is_open: 1,
    version: 1,
  };
  return { ...base, ...overrides };
}

export function signed(row: SessionRow, sign: 1 | -1): SignedSessionRow {
  return { ...row, sign };
}

export interface SimulatedStream {
  /** Rows per flush, in order, as the worker would insert them. */
  batches: SignedSessionRow[][];
  /** The rows standing when the stream is over (what `FINAL WHERE sign = 1` must return). */
  current: SessionRow[];
  /** Every valid event, as `events` rows. */
  events: EventRow[];
  stats: { starts: number; updates: number; ends: number; retracts: number };
}

/**
 * Feeds raw events through the engine batch by batch, in arrival order, reconciling after each
 * batch at the event-time watermark like the worker, and at the end at `finalCloseMs` (past
 * every session's end, so all are closed). Nothing is late (lateness is unbounded), so the
 * final sessions equal what recomputation would produce.
 */
export function simulateWorker(arrivals: readonly (readonly object[])[], finalCloseMs: number): SimulatedStream {
  const config: EngineConfig = { timeoutMs: TIMEOUT_MS, latenessMs: Infinity };
  const states = new Map<string, KeyState>();
  const stream: SimulatedStream = { batches: [], current: [], events: [], stats: { starts: 0, updates: 0, ends: 0, retracts: 0 } };
  const standing = new Map<string, SessionRow>();
  let watermark = -Infinity;
  let offset = 0;

  const flush = (keys: Iterable<string>, closeBound: number) => {
    const rows: SignedSessionRow[] = [];
    for (const key of keys) {
      const changes = reconcile(states.get(key) as KeyState, config, watermark, closeBound);
      for (const change of changes) {
        if (change.kind === 'start') stream.stats.starts += 1;
        else if (change.kind === 'update') stream.stats.updates += 1;
        else if (change.kind === 'end') stream.stats.ends += 1;
        else stream.stats.retracts += 1;
        if (change.cancel) standing.delete(change.cancel.session_id);
        if (change.write) standing.set(change.write.session_id, change.write);
      }
      rows.push(...signedRows(changes));
    }
    if (rows.length > 0) stream.batches.push(rows);
  };

  for (const batch of arrivals) {
    const touched = new Set<string>();
    for (const raw of batch) {
      const text = JSON.stringify(raw);
      offset += 1;
      const parsed = parseEvent(text);
      if (!parsed.ok) continue;
      const event: SessionEvent = parsed.event;
      let state = states.get(event.userKey);
      if (!state) {
        state = newKeyState(event.userKey);
        states.set(event.userKey, state);
      }
      if (applyEvent(state, event, config, watermark) === 'applied') {
        stream.events.push(toEventRow(parsed.valid, text, { topic: 'events', partition: 0, offset, receivedAtMs: event.ts + 1000 }));
      }
      watermark = Math.max(watermark, event.ts);
      touched.add(event.userKey);
    }
    flush(touched, -Infinity);
  }
  flush(states.keys(), finalCloseMs);
  stream.current = [...standing.values()];
  return stream;
}

/** `items` cut into consecutive chunks of `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Per day and group: what the report must show, computed from rows in memory. */
export type ExpectedTotals = ReportTotals;

export function expectedTotals(rows: readonly SessionRow[], by?: keyof SessionRow): ExpectedTotals[] {
  const groups = new Map<string, { totals: ExpectedTotals; users: Set<string> }>();
  for (const row of rows) {
    const day = row.started_at.slice(0, 10);
    const group = by ? String(row[by]) : '';
    const key = `${day}\u0000${group}`;
    let entry = groups.get(key);
    if (!entry) {
      entry = {
        totals: { day, group, sessions: 0, users: 0, engagedSessions: 0, bounces: 0, durationMs: 0, views: 0 },
        users: new Set(),
      };
      groups.set(key, entry);
    }
    const t = entry.totals;
    t.sessions += 1;
    t.engagedSessions += row.is_engaged;
    t.bounces += row.is_bounce;
    t.durationMs += row.duration_ms;
    t.views += row.views;
    entry.users.add(row.user_key);
  }
  return [...groups.values()]
    .map(({ totals, users }) => ({ ...totals, users: users.size }))
    .sort(byDayAndGroup);
}

export function byDayAndGroup(a: { day: string; group: string }, b: { day: string; group: string }): number {
  if (a.day !== b.day) return a.day < b.day ? -1 : 1;
  return a.group < b.group ? -1 : a.group > b.group ? 1 : 0;
}
