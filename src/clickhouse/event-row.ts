/**
 * One consumed event as a row of the `events` table (schemas/clickhouse/002_events.sql and
 * 014_events_raw.sql), ready for an insert (RowBinary, see session-sink.ts). Pure: the caller
 * supplies the receive time.
 *
 * A row holds the message once, in `raw`, plus the columns the table sorts, filters and joins on
 * (site, ids, user key, time, type, channel, key_event) and the Kafka coordinates. The event's other
 * fields (name, page, campaign, device, geo, properties) are ALIAS columns that ClickHouse reads
 * out of `raw`: writing them a second time was most of the cost of storing an event.
 *
 * Stored values follow the event and session rules, so queries need not repeat the defaults:
 * absent or null text is "", `channel` defaults to `web`, `key_event` is 0/1. `raw` is the
 * message exactly as received (its bytes, when the worker has them), except for a Segment Spec
 * message: there it is the event the message was mapped to (as JSON), so that recalculation from
 * this table reads every `raw` with the one parser of our own format.
 */
import type { ValidEvent } from '../events/event-schema';
import { userKeyOf, type EventFields } from '../events/session-event';
import { DEFAULT_SITE } from '../events/visitor-key';
import type { Column } from './row-binary';

/** Where the event came from. Without it the table's defaults apply (no Kafka coordinates). */
export interface EventSource {
  topic: string;
  partition: number;
  /** Kafka offset; kafkajs gives it as a decimal string, which Int64 parses exactly. */
  offset: string | number;
  /** When the worker received the message, epoch milliseconds. */
  receivedAtMs: number;
  /** The topic's site (KAFKA_TOPIC_SITES), for an event that names none; `default` when absent. */
  site?: string;
}

export interface EventRow {
  /** The event's own `site`, else its topic's, else `default`. */
  site: string;
  event_id: string;
  user_key: string;
  anonymous_id: string;
  user_id: string;
  /** Event time, epoch milliseconds (RowBinary writes DateTime64(3) as exactly that). */
  timestamp: number;
  type: string;
  channel: string;
  key_event: 0 | 1;
  /** The event as JSON: the message's UTF-8 bytes as received, or its text. */
  raw: string | Uint8Array;
  /** Epoch milliseconds. */
  received_at?: number;
  kafka_topic?: string;
  kafka_partition?: number;
  kafka_offset?: string;
}

/** @param site the site of an event that names none, when it did not come from a topic (a backfill's `--site`) */
export function toEventRow(valid: ValidEvent, raw: string | Uint8Array, source?: EventSource, site?: string): EventRow {
  return eventRowOf(valid, valid.timestamp, raw, source, site);
}

/**
 * `toEventRow` from an event's fields and its time in epoch milliseconds: the worker hands over
 * the parsed JSON itself once it is known valid (no `ValidEvent` copy), and the message's bytes
 * as `raw` (copied as they are, never encoded again). Only the schema's own fields are read, so
 * keys the schema does not know never reach a column.
 */
export function eventRowOf(valid: EventFields, ts: number, raw: string | Uint8Array, source?: EventSource, site?: string): EventRow {
  const row: EventRow = {
    site: valid.site || site || source?.site || DEFAULT_SITE,
    event_id: valid.event_id,
    user_key: userKeyOf(valid),
    anonymous_id: valid.anonymous_id ?? '',
    user_id: valid.user_id ?? '',
    timestamp: ts,
    type: valid.type,
    channel: valid.channel ?? 'web',
    key_event: valid.key_event === true ? 1 : 0,
    raw,
  };
  if (source) {
    row.received_at = source.receivedAtMs;
    row.kafka_topic = source.topic;
    row.kafka_partition = source.partition;
    row.kafka_offset = String(source.offset);
  }
  return row;
}

/** Stored columns of `events` and their types, in the order we send them (the rest are ALIAS columns). */
export const EVENT_COLUMNS: readonly Column<keyof EventRow>[] = [
  { name: 'site', type: 'String' },
  { name: 'event_id', type: 'String' },
  { name: 'user_key', type: 'String' },
  { name: 'anonymous_id', type: 'String' },
  { name: 'user_id', type: 'String' },
  { name: 'timestamp', type: "DateTime64(3, 'UTC')" },
  { name: 'type', type: 'String' },
  { name: 'channel', type: 'String' },
  { name: 'key_event', type: 'UInt8' },
  { name: 'raw', type: 'String' },
  { name: 'received_at', type: "DateTime64(3, 'UTC')" },
  { name: 'kafka_topic', type: 'String' },
  { name: 'kafka_partition', type: 'Int32' },
  { name: 'kafka_offset', type: 'Int64' },
];
