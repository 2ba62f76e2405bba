/**
 * What recalculation reads from ClickHouse (schemas/clickhouse/001_sessions.sql, 002_events.sql):
 * the user keys with events since a date, page by page; for a page of keys, where each key's
 * recalculation starts, the sessions before and after that point, and the events after it.
 *
 * A key is a visitor key (src/events/visitor-key.ts): a site and a user key. Every query takes
 * the page's keys, with each key's start time, as an external table (`recalc_page`: `site
 * String, user_key String, key String, start Int64`) sent in the request body, never in the URL
 * (src/clickhouse/external-data.ts): a page of 500 keys of 100 bytes would make a 50 KB URL,
 * beyond what servers and proxies accept. `(site, user_key) IN (SELECT site, user_key FROM
 * recalc_page)` picks the page's rows (by the tables' sorting keys, which begin with both) and
 * `transform(site || '|' || user_key, keys, starts, 0)` gives a key's start (a site holds no
 * `|`, so the text names one pair), so one statement serves a page. Times cross as epoch
 * milliseconds (`toUnixTimestamp64Milli`), never as text. Every failure names what was being read.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { queryAll, queryRows, type ExternalTable } from '../clickhouse/external-data';
import { SESSION_FIELDS, visitorKeyOfRow, type SessionRow } from '../engine/session-row';
import { parseSessionEvent } from '../events/parse-event';
import type { SessionEvent } from '../events/session-event';
import { formatTimestamp } from '../events/timestamp';
import { splitVisitorKey, visitorKeyOf } from '../events/visitor-key';
import { PLAIN_IDENTIFIER } from '../clickhouse/client';
import type { EventRow } from '../clickhouse/event-row';
import { shardCondition, shardParams, type KeyShard } from './key-shard';

/** Results must carry 64-bit integers as JSON numbers (times in ms, versions, durations). */
const READ_SETTINGS = { output_format_json_quote_64bit_integers: 0 } as const;
/** Rounds of moving a key's start point earlier before giving up (see `startPoints`). */
const MAX_START_ROUNDS = 100;

/** Sessions of a key before its start point: how many, and the last one's id. */
export interface Seed {
  count: number;
  lastId: string;
}

/** One key's events from its start point on, as the engine sees them. */
export interface UserEvents {
  userKey: string;
  /** In the order of the query: (timestamp, event_id); the caller puts ties in recompute's order. */
  events: SessionEvent[];
  /** Kafka topic and partition of the key's latest event that came through the worker, if any. */
  streamedFrom: { topic: string; partition: number } | null;
  /** Rows whose `raw` and columns make no valid event, or hold text that is not UTF-8 (skipped). */
  invalid: number;
}

/**
 * An `events` row as read back: the stored columns, the time as epoch ms (`ts`), Kafka
 * coordinates. The event's other fields are ALIAS columns computed from `raw`, which the engine
 * parses itself, so they are not read.
 */
type EventRowOut = Omit<EventRow, 'timestamp' | 'raw' | 'received_at' | 'kafka_offset' | 'key_event' | 'kafka_topic' | 'kafka_partition'> & {
  raw: string;
  ts: number;
  key_event: number;
  kafka_topic: string;
  kafka_partition: number;
  /** 1 when every text column of the row is UTF-8. */
  utf8: number;
};

const EVENT_COLUMNS = [
  'site',
  'user_key',
  'toUnixTimestamp64Milli(timestamp) AS ts',
  'raw',
  'event_id',
  'type',
  'channel',
  'key_event',
  'anonymous_id',
  'user_id',
  'kafka_topic',
  'kafka_partition',
  // Events are UTF-8 only, and JSON output would carry other bytes as U+FFFD, unnoticed:
  // ask the server whether the row's text is UTF-8 (rows written by imports are not checked).
  `isValidUTF8(concat(raw, event_id, user_key, anonymous_id, user_id)) AS utf8`,
].join(', ');

/** Times as ms under other names: an alias named like its column would stand for it in WHERE. */
export const SESSION_COLUMNS = [
  ...SESSION_FIELDS.map((f) => (f === 'started_at' || f === 'ended_at' ? `toUnixTimestamp64Milli(${f}) AS ${f}_ms` : f)),
  'is_open',
  'version',
].join(', ');

/** The page's keys and starts as two aligned arrays (one aggregation, so in the same order). */
const PAGE = 'WITH (SELECT (groupArray(key), groupArray(start)) FROM recalc_page) AS page';
/** Rows of the page's keys. */
const IN_PAGE = '(site, user_key) IN (SELECT site, user_key FROM recalc_page)';
/** A row's (site, user_key) as the text of `recalc_page.key` (`pageKeyOf`). */
const ROW_KEY = "concat(site, '|', user_key)";
/** The row's key's start point in ms. */
const START = `transform(${ROW_KEY}, page.1, page.2, toInt64(0))`;

/** `recalc_page.key` of a visitor key: `site|user_key` (a site never holds `|`). */
function pageKeyOf(key: string): string {
  const { site, userKey } = splitVisitorKey(key);
  return `${site}|${userKey}`;
}

/**
 * The condition on `site` of a recalculation of one site, or "": the site travels as external
 * data (`siteTables`), as every text does here (queries with external data bind integers only).
 */
function siteCondition(site: string | undefined): string {
  return site === undefined ? '' : 'AND site IN (SELECT site FROM recalc_site)';
}

function siteTables(site: string | undefined): ExternalTable[] {
  return site === undefined ? [] : [{ name: 'recalc_site', structure: 'site String', rows: [[site]] }];
}

export class ClickHouseSource {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {
    if (!PLAIN_IDENTIFIER.test(database)) throw new Error(`not a plain database name: ${database}`);
  }

  /** How many user keys (of `shard`, when given) have an event at or after `sinceMs` (for progress). */
  async countUsers(sinceMs: number, shard?: KeyShard, site?: string): Promise<number> {
    const rows = await queryAll<{ n: number }>(this.client, {
      query: `SELECT uniqExact(site, user_key) AS n FROM ${this.database}.events
       WHERE timestamp >= fromUnixTimestamp64Milli({since:Int64}, 'UTC') ${siteCondition(site)} ${shardCondition(shard)}`,
      tables: siteTables(site),
      params: { since: sinceMs, ...shardParams(shard) },
      settings: READ_SETTINGS,
      doing: 'counting the user keys with events since D',
    });
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * The next `limit` visitor keys (of `shard` and of `site`, when given) after `after` ("" for
   * the first page), in (site, user_key) order, with an event at or after `sinceMs`.
   */
  async userPage(sinceMs: number, after: string, limit: number, shard?: KeyShard, site?: string): Promise<string[]> {
    // The last key of the previous page is a user key too: it goes in the body, not the URL.
    // The first page starts after ('', ''), which no key is (a site is never empty).
    const last = after === '' ? { site: '', userKey: '' } : splitVisitorKey(after);
    const rows = await queryAll<{ site: string; user_key: string }>(this.client, {
      query: `SELECT site, user_key FROM ${this.database}.events
              WHERE timestamp >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
                AND (site, user_key) > (SELECT any(site), any(user_key) FROM recalc_after) ${siteCondition(site)} ${shardCondition(shard)}
              GROUP BY site, user_key ORDER BY site, user_key LIMIT {limit:UInt32}`,
      tables: [{ name: 'recalc_after', structure: 'site String, user_key String', rows: [[last.site, last.userKey]] }, ...siteTables(site)],
      params: { since: sinceMs, limit, ...shardParams(shard) },
      settings: READ_SETTINGS,
      doing: `reading the next ${limit} user keys with events since D from ${this.database}.events`,
    });
    return rows.map((r) => visitorKeyOf(r.site, r.user_key));
  }

  /**
   * Each key's start point: the latest time at or before `sinceMs` that is a clean session
   * boundary, so that the session open at `sinceMs` is rebuilt whole and nothing before the point
   * can change what comes after it. Starting from `sinceMs`, a key's point moves to
   *   - the start of a current session that began before it and ended less than T before it
   *     (or spans it), and
   *   - the earliest event less than T before it (an event no session holds yet: one too late for
   *     streaming, or any event when T grew),
   * until neither exists. Usually one or two rounds.
   */
  async startPoints(keys: readonly string[], sinceMs: number, timeoutMs: number): Promise<Map<string, number>> {
    const starts = new Map(keys.map((k) => [k, sinceMs]));
    let moving = [...keys];
    for (let round = 0; moving.length > 0; round++) {
      if (round >= MAX_START_ROUNDS) {
        throw new Error(`recalculation: no clean session boundary found for ${moving.length} user keys (e.g. ${moving[0]}) within ${MAX_START_ROUNDS} rounds`);
      }
      const page = pageTable(new Map(moving.map((k) => [k, starts.get(k) as number])));
      const params = { timeout: timeoutMs };
      const [sessions, events] = await Promise.all([
        this.pageRows<KeyRow & { at: number }>(
          `${PAGE} SELECT site, user_key, min(toUnixTimestamp64Milli(started_at)) AS at FROM ${this.database}.sessions FINAL
           WHERE ${IN_PAGE} AND sign = 1
             AND toUnixTimestamp64Milli(started_at) < ${START}
             AND toUnixTimestamp64Milli(ended_at) >= ${START} - {timeout:Int64}
           GROUP BY site, user_key`,
          page,
          `finding where ${moving.length} user keys start (sessions open at D, round ${round + 1})`,
          params,
        ),
        this.pageRows<KeyRow & { at: number }>(
          `${PAGE} SELECT site, user_key, min(toUnixTimestamp64Milli(timestamp)) AS at FROM ${this.database}.events
           WHERE ${IN_PAGE}
             AND toUnixTimestamp64Milli(timestamp) < ${START}
             AND toUnixTimestamp64Milli(timestamp) >= ${START} - {timeout:Int64}
           GROUP BY site, user_key`,
          page,
          `finding where ${moving.length} user keys start (events within T before D, round ${round + 1})`,
          params,
        ),
      ]);
      const moved = new Set<string>();
      for (const row of [...sessions, ...events]) {
        const key = visitorKeyOf(row.site, row.user_key);
        const start = starts.get(key);
        if (start !== undefined && Number(row.at) < start) {
          starts.set(key, Number(row.at));
          moved.add(key);
        }
      }
      moving = [...moved];
    }
    return starts;
  }

  /** Per key: the current sessions that began before its start point. */
  async seeds(starts: ReadonlyMap<string, number>): Promise<Map<string, Seed>> {
    const rows = await this.pageRows<KeyRow & { n: number; last: string }>(
      `${PAGE} SELECT site, user_key, count() AS n, argMax(session_id, started_at) AS last FROM ${this.database}.sessions FINAL
       WHERE ${IN_PAGE} AND sign = 1 AND toUnixTimestamp64Milli(started_at) < ${START}
       GROUP BY site, user_key`,
      pageTable(starts),
      `reading the sessions before the start of ${starts.size} user keys`,
    );
    return new Map(rows.map((r) => [visitorKeyOf(r.site, r.user_key), { count: Number(r.n), lastId: r.last }]));
  }

  /** Per key: the current rows (`FINAL WHERE sign = 1`) that began at or after its start point, by start. */
  async currentRows(starts: ReadonlyMap<string, number>): Promise<Map<string, SessionRow[]>> {
    const rows = await this.pageRows<Record<string, unknown>>(
      `${PAGE} SELECT ${SESSION_COLUMNS} FROM ${this.database}.sessions FINAL
       WHERE ${IN_PAGE} AND sign = 1 AND toUnixTimestamp64Milli(started_at) >= ${START}
       ORDER BY site, user_key, started_at, session_id, version`,
      pageTable(starts),
      `reading the current sessions of ${starts.size} user keys`,
    );
    const byKey = new Map<string, SessionRow[]>();
    for (const raw of rows) {
      const row = toSessionRow(raw);
      const key = visitorKeyOfRow(row);
      const list = byKey.get(key);
      if (list) list.push(row);
      else byKey.set(key, [row]);
    }
    return byKey;
  }

  /** Per session id that began at or after its key's start point: the highest version it ever had. */
  async maxVersions(starts: ReadonlyMap<string, number>): Promise<Map<string, number>> {
    const rows = await this.pageRows<{ session_id: string; v: number }>(
      `${PAGE} SELECT session_id, max(version) AS v FROM ${this.database}.sessions
       WHERE ${IN_PAGE} AND toUnixTimestamp64Milli(started_at) >= ${START}
       GROUP BY session_id`,
      pageTable(starts),
      `reading the session versions of ${starts.size} user keys`,
    );
    return new Map(rows.map((r) => [r.session_id, Number(r.v)]));
  }

  /**
   * Each key's events from its start point on, one key at a time (streamed, so a page of keys
   * never has to fit in memory at once). Not FINAL: copies of an event are dropped by the engine
   * as duplicates, as `recompute` drops them.
   */
  async *events(starts: ReadonlyMap<string, number>): AsyncGenerator<UserEvents> {
    const rows = queryRows<EventRowOut>(this.client, {
      query: `${PAGE} SELECT ${EVENT_COLUMNS} FROM ${this.database}.events
              WHERE ${IN_PAGE} AND toUnixTimestamp64Milli(timestamp) >= ${START}
              ORDER BY site, user_key, timestamp, event_id`,
      tables: [pageTable(starts)],
      settings: READ_SETTINGS,
      doing: `reading the events of ${starts.size} user keys`,
    });
    let current: UserEvents | null = null;
    let latestStreamed = -Infinity;
    for await (const row of rows) {
      const key = visitorKeyOf(row.site, row.user_key);
      if (!current || current.userKey !== key) {
        if (current) yield current;
        current = { userKey: key, events: [], streamedFrom: null, invalid: 0 };
        latestStreamed = -Infinity;
      }
      const event = toSessionEvent(row);
      if (event) current.events.push(event);
      else current.invalid += 1;
      if (row.kafka_topic !== '' && Number(row.kafka_partition) >= 0 && Number(row.ts) >= latestStreamed) {
        latestStreamed = Number(row.ts);
        current.streamedFrom = { topic: row.kafka_topic, partition: Number(row.kafka_partition) };
      }
    }
    if (current) yield current;
  }

  /** A query over a page of keys (`recalc_page` in the body). */
  private pageRows<T>(query: string, page: ExternalTable, doing: string, params?: Record<string, unknown>): Promise<T[]> {
    return queryAll<T>(this.client, { query, tables: [page], params, settings: READ_SETTINGS, doing });
  }
}

/** The page's keys and their start points, as the external table `recalc_page`. */
function pageTable(starts: ReadonlyMap<string, number>): ExternalTable {
  const rows = [...starts].map(([key, start]) => {
    const { site, userKey } = splitVisitorKey(key);
    return [site, userKey, pageKeyOf(key), start];
  });
  return { name: 'recalc_page', structure: 'site String, user_key String, key String, start Int64', rows };
}

/** A result row naming a visitor key by its two halves. */
interface KeyRow {
  site: string;
  user_key: string;
}

export function toSessionRow(raw: Record<string, unknown>): SessionRow {
  const row: Record<string, unknown> = {};
  for (const field of SESSION_FIELDS) row[field] = raw[field];
  row.started_at = formatTimestamp(Number(raw.started_at_ms));
  row.ended_at = formatTimestamp(Number(raw.ended_at_ms));
  for (const field of ['duration_ms', 'events', 'views', 'is_engaged', 'is_bounce', 'session_number', 'is_open', 'version']) {
    row[field] = Number(raw[field]);
  }
  return row as unknown as SessionRow;
}

/**
 * The engine's view of a stored event: its `raw` message parsed as the worker parsed it, or,
 * for a row written without `raw` (an import that filled only the stored columns), the event
 * those columns make (its other fields are read from `raw`, so they are empty there).
 */
function toSessionEvent(row: EventRowOut): SessionEvent | null {
  if (Number(row.utf8) !== 1) return null;
  // The row's site is the event's own, else its topic's: the one `raw` lacks when it has none.
  if (row.raw !== '') {
    const parsed = parseSessionEvent(row.raw, row.site);
    if (!(parsed instanceof Error)) return parsed;
  }
  const parsed = parseSessionEvent(JSON.stringify(eventFromColumns(row)), row.site);
  return parsed instanceof Error ? null : parsed;
}

function eventFromColumns(row: EventRowOut): Record<string, unknown> {
  return {
    event_id: row.event_id,
    type: row.type,
    timestamp: Number(row.ts),
    channel: row.channel || undefined,
    anonymous_id: row.anonymous_id || undefined,
    user_id: row.user_id || undefined,
    key_event: Number(row.key_event) === 1 ? true : undefined,
  };
}
