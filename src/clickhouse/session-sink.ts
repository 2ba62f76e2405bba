/**
 * Writes the worker's output to ClickHouse: session rows (with `sign`) to `sessions`, consumed
 * events to `events`, both in RowBinary (row-binary.ts says why). Each insert carries an
 * `insert_deduplication_token` chosen by the caller from what the rows stand for (partition and
 * outbox sequence, or offset range), so a flush retried after a crash is dropped by ClickHouse
 * instead of doubling a count.
 */
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { parseError, type ClickHouseClient } from '@clickhouse/client';
import type { SessionChange } from '../engine/engine';
import { SESSION_FIELDS, type SessionRow } from '../engine/session-row';
import { DEFAULT_SITE } from '../events/visitor-key';
import { EVENT_COLUMNS, type EventRow } from './event-row';
import { RowBinaryBatch, RowBinaryEncoder, type Column, type ColumnType } from './row-binary';

export interface SignedSessionRow extends SessionRow {
  sign: 1 | -1;
}

/** A cancel row repeats the written row with sign −1 (same version), so the pair collapses. */
export function signedRows(changes: readonly SessionChange[]): SignedSessionRow[] {
  const rows: SignedSessionRow[] = [];
  for (const change of changes) {
    if (change.cancel) rows.push({ ...change.cancel, sign: -1 });
    if (change.write) rows.push({ ...change.write, sign: 1 });
  }
  return rows;
}

/** Column order of session rows as we send them, and as the outbox stores them (arrays). */
export const SESSION_COLUMNS = [...SESSION_FIELDS, 'is_open', 'version', 'sign'] as const;

type SessionColumn = (typeof SESSION_COLUMNS)[number];

/** Types of `sessions` (schemas/clickhouse/001_sessions.sql); an integration test compares them. */
const SESSION_COLUMN_TYPES: Record<SessionColumn, ColumnType> = {
  site: 'String',
  session_id: 'String',
  user_key: 'String',
  anonymous_id: 'String',
  user_id: 'String',
  started_at: "DateTime64(3, 'UTC')",
  ended_at: "DateTime64(3, 'UTC')",
  duration_ms: 'UInt64',
  events: 'UInt32',
  views: 'UInt32',
  entry_page: 'String',
  exit_page: 'String',
  source: 'String',
  medium: 'String',
  campaign: 'String',
  term: 'String',
  content: 'String',
  channel: 'String',
  device_type: 'String',
  os: 'String',
  browser: 'String',
  app_version: 'String',
  country: 'String',
  region: 'String',
  city: 'String',
  is_engaged: 'UInt8',
  is_bounce: 'UInt8',
  session_number: 'UInt32',
  previous_session_id: 'String',
  is_open: 'UInt8',
  version: 'UInt64',
  sign: 'Int8',
};

export const SESSION_TABLE_COLUMNS: readonly Column<SessionColumn>[] = SESSION_COLUMNS.map((name) => ({ name, type: SESSION_COLUMN_TYPES[name] }));

/** A session row as the array of its `SESSION_COLUMNS` values: half the bytes of an object in the outbox. */
export type SessionValues = unknown[];

export function sessionValues(row: SignedSessionRow): SessionValues {
  return SESSION_COLUMNS.map((column) => row[column]);
}

const SESSION_ENCODER = new RowBinaryEncoder('sessions', SESSION_TABLE_COLUMNS);

/**
 * The columns of an insert body encoded by a worker from before sites: every column but `site`,
 * which the table then fills with its default (`default`, the site of all data from then).
 */
const SESSION_ENCODER_BEFORE_SITES = new RowBinaryEncoder(
  'sessions',
  SESSION_TABLE_COLUMNS.filter((c) => c.name !== 'site'),
);

/**
 * First byte of an insert body of session rows with every column of `SESSION_COLUMNS`: it tells
 * it from a body stored by a worker from before sites (RowBinary starting with a session id's
 * length, 32) and from older JSON entries (`[`).
 */
const WITH_SITE = 0x01;

/**
 * Session rows as the body of their insert (RowBinary, after the `WITH_SITE` byte): what the
 * outbox keeps in Redis, so the rows are encoded once, and the insert that flushes an entry sends
 * its bytes as they are.
 */
export function encodeSessionRows(rows: readonly SessionValues[]): Buffer {
  return SESSION_ENCODER.encodeArrays(rows, WITH_SITE);
}

/**
 * The insert body of an outbox entry as stored (`encodeSessionRows`, or RowBinary without the
 * `site` column from a worker of an earlier release, sent as it is), or, from an older release
 * still, a JSON array of rows (arrays, or objects), encoded here: their rows are of the site
 * `default`, the only one there was.
 */
export function outboxBody(payload: Buffer): Buffer {
  if (payload[0] !== 0x5b) return payload;
  const rows = JSON.parse(payload.toString('utf8')) as Array<SessionValues | SignedSessionRow>;
  return encodeSessionRows(rows.map((row) => (Array.isArray(row) ? valuesBeforeSites(row) : sessionValues({ ...row, site: row.site ?? DEFAULT_SITE }))));
}

/** An outbox row stored as an array by a release from before sites lacks the first value, `site`. */
function valuesBeforeSites(values: SessionValues): SessionValues {
  return values.length === SESSION_COLUMNS.length - 1 ? [DEFAULT_SITE, ...values] : values;
}

export type EventRowBatch = RowBinaryBatch<keyof EventRow>;

export class ClickHouseSink {
  private readonly sessions = SESSION_ENCODER;
  private readonly events = new RowBinaryEncoder('events', EVENT_COLUMNS);
  /** Rows built without a Kafka source leave those columns to the table's defaults. */
  private readonly eventsWithoutSource = new RowBinaryEncoder(
    'events',
    EVENT_COLUMNS.filter((c) => !['received_at', 'kafka_topic', 'kafka_partition', 'kafka_offset'].includes(c.name)),
  );

  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  /** Session rows, as values or already encoded (an outbox entry's body: `outboxBody`). */
  insertSessions(rows: readonly SessionValues[] | Buffer, deduplicationToken: string): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    if (!Buffer.isBuffer(rows)) return this.insert(this.sessions, this.sessions.encodeArrays(rows as readonly SessionValues[]), deduplicationToken);
    if (rows[0] === WITH_SITE) return rows.length === 1 ? Promise.resolve() : this.insert(this.sessions, rows.subarray(1), deduplicationToken);
    return this.insert(SESSION_ENCODER_BEFORE_SITES, rows, deduplicationToken);
  }

  /** Event rows, all built by `toEventRow` with a source, or all without one. */
  insertEvents(rows: readonly EventRow[], deduplicationToken: string): Promise<void> {
    const first = rows[0];
    if (!first) return Promise.resolve();
    const batch = this.eventBatch(first.kafka_offset !== undefined);
    for (const row of rows) batch.add(row);
    return this.insertEventBatch(batch, deduplicationToken);
  }

  /**
   * An empty batch of `events` rows to fill with `add` (rows with a Kafka source, or without).
   * `messageBytes`: the size of the messages the rows come from, if known; a row takes its
   * message (the `raw` column) plus ids, time and Kafka coordinates: about 1.3 times the message.
   */
  eventBatch(withSource = true, messageBytes = 0): EventRowBatch {
    const expected = Math.max(64 * 1024, Math.ceil(messageBytes * 1.4));
    return new RowBinaryBatch(withSource ? this.events : this.eventsWithoutSource, expected);
  }

  insertEventBatch(batch: EventRowBatch, deduplicationToken: string): Promise<void> {
    if (batch.count === 0) return Promise.resolve();
    return this.insert(batch.encoder, batch.bytes(), deduplicationToken);
  }

  private async insert(encoder: RowBinaryEncoder<string>, body: Buffer, deduplicationToken: string): Promise<void> {
    // `exec` sends the statement in the URL and the bytes as the body; `insert` only knows the
    // text formats. The (empty) response must be read to give the socket back to the pool.
    // Error answers are read here rather than by the client, which would turn one with an empty
    // body (a proxy's bare 502, a request-size limit) into an Error with an empty message.
    const { stream, http_status_code: status = 200 } = await this.client.exec({
      query: `INSERT INTO ${this.database}.${encoder.table} ${encoder.columnList()} FORMAT RowBinary`,
      values: Readable.from([body]),
      clickhouse_settings: { insert_deduplication_token: deduplicationToken },
      ignore_error_response: true,
    });
    if (status < 200 || status >= 300) {
      let text = '';
      for await (const chunk of stream) text += (chunk as Buffer).toString('utf8');
      // The server's message becomes the client's own error type (with `code`), as before.
      if (text.trim() !== '') throw parseError(text);
      throw new Error(`ClickHouse answered HTTP ${status} with no message (a proxy or load balancer in between, or a request size limit)`);
    }
    stream.resume();
    await finished(stream);
  }
}
