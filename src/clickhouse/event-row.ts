/**
 * One consumed event as a row of the `events` table (schemas/clickhouse/002_events.sql), ready
 * for an insert (RowBinary, see session-sink.ts). Pure: the caller supplies the receive time.
 *
 * Values are stored as the event and session rules read them, so queries need not repeat the
 * defaults: absent or null text is "", `channel` defaults to `web`, `key_event` is 0/1 and the
 * country is upper case (as in `sessions`). `raw` keeps the message exactly as received, except
 * for a Segment Spec message: there it is the event the message was mapped to (as JSON), so that
 * recalculation from this table reads every `raw` with the one parser of our own format.
 */
import type { ValidEvent } from '../events/event-schema';
import { copyProperties } from '../events/fast-validate';
import { userKeyOf, type EventFields } from '../events/session-event';
import type { Column } from './row-binary';

/** Where the event came from. Without it the table's defaults apply (no Kafka coordinates). */
export interface EventSource {
  topic: string;
  partition: number;
  /** Kafka offset; kafkajs gives it as a decimal string, which Int64 parses exactly. */
  offset: string | number;
  /** When the worker received the message, epoch milliseconds. */
  receivedAtMs: number;
}

export interface EventRow {
  event_id: string;
  user_key: string;
  anonymous_id: string;
  user_id: string;
  /** Event time, epoch milliseconds (RowBinary writes DateTime64(3) as exactly that). */
  timestamp: number;
  type: string;
  name: string;
  channel: string;
  key_event: 0 | 1;
  page_url: string;
  page_path: string;
  page_title: string;
  page_referrer: string;
  campaign_source: string;
  campaign_medium: string;
  campaign_name: string;
  campaign_term: string;
  campaign_content: string;
  device_type: string;
  device_os: string;
  device_browser: string;
  device_app_version: string;
  geo_country: string;
  geo_region: string;
  geo_city: string;
  /** The `properties` object as JSON text; "{}" when absent. */
  properties: string;
  raw: string;
  /** Epoch milliseconds. */
  received_at?: number;
  kafka_topic?: string;
  kafka_partition?: number;
  kafka_offset?: string;
}

export function toEventRow(valid: ValidEvent, raw: string, source?: EventSource): EventRow {
  return eventRowOf(valid, valid.timestamp, raw, source);
}

/**
 * `toEventRow` from an event's fields and its time in epoch milliseconds: the worker hands over
 * the parsed JSON itself once it is known valid (no `ValidEvent` copy). Only the schema's own
 * fields are read, so keys the schema does not know never reach the row.
 */
export function eventRowOf(valid: EventFields, ts: number, raw: string, source?: EventSource): EventRow {
  const row: EventRow = {
    event_id: valid.event_id,
    user_key: userKeyOf(valid),
    anonymous_id: valid.anonymous_id ?? '',
    user_id: valid.user_id ?? '',
    timestamp: ts,
    type: valid.type,
    name: valid.name ?? '',
    channel: valid.channel ?? 'web',
    key_event: valid.key_event === true ? 1 : 0,
    page_url: valid.page?.url ?? '',
    page_path: valid.page?.path ?? '',
    page_title: valid.page?.title ?? '',
    page_referrer: valid.page?.referrer ?? '',
    campaign_source: valid.campaign?.source ?? '',
    campaign_medium: valid.campaign?.medium ?? '',
    campaign_name: valid.campaign?.name ?? '',
    campaign_term: valid.campaign?.term ?? '',
    campaign_content: valid.campaign?.content ?? '',
    device_type: valid.device?.type ?? '',
    device_os: valid.device?.os ?? '',
    device_browser: valid.device?.browser ?? '',
    device_app_version: valid.device?.app_version ?? '',
    geo_country: valid.geo?.country ? valid.geo.country.toUpperCase() : '',
    geo_region: valid.geo?.region ?? '',
    geo_city: valid.geo?.city ?? '',
    properties: propertiesJson(valid.properties),
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

/** `properties` as JSON text, "{}" when absent, as the schema's copy of it would print. */
function propertiesJson(properties: ValidEvent['properties']): string {
  if (!properties) return '{}';
  // The parsed JSON itself can hold an own "__proto__" key that the schema's copy drops.
  return JSON.stringify(Object.prototype.hasOwnProperty.call(properties, '__proto__') ? copyProperties(properties) : properties);
}

/** Columns and types of `events` (schemas/clickhouse/002_events.sql) in the order we send them. */
export const EVENT_COLUMNS: readonly Column<keyof EventRow>[] = [
  { name: 'event_id', type: 'String' },
  { name: 'user_key', type: 'String' },
  { name: 'anonymous_id', type: 'String' },
  { name: 'user_id', type: 'String' },
  { name: 'timestamp', type: "DateTime64(3, 'UTC')" },
  { name: 'type', type: 'String' },
  { name: 'name', type: 'String' },
  { name: 'channel', type: 'String' },
  { name: 'key_event', type: 'UInt8' },
  { name: 'page_url', type: 'String' },
  { name: 'page_path', type: 'String' },
  { name: 'page_title', type: 'String' },
  { name: 'page_referrer', type: 'String' },
  { name: 'campaign_source', type: 'String' },
  { name: 'campaign_medium', type: 'String' },
  { name: 'campaign_name', type: 'String' },
  { name: 'campaign_term', type: 'String' },
  { name: 'campaign_content', type: 'String' },
  { name: 'device_type', type: 'String' },
  { name: 'device_os', type: 'String' },
  { name: 'device_browser', type: 'String' },
  { name: 'device_app_version', type: 'String' },
  { name: 'geo_country', type: 'String' },
  { name: 'geo_region', type: 'String' },
  { name: 'geo_city', type: 'String' },
  { name: 'properties', type: 'String' },
  { name: 'raw', type: 'String' },
  { name: 'received_at', type: "DateTime64(3, 'UTC')" },
  { name: 'kafka_topic', type: 'String' },
  { name: 'kafka_partition', type: 'Int32' },
  { name: 'kafka_offset', type: 'Int64' },
];
