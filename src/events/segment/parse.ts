/**
 * A Segment message as bytes (a Kafka value, an NDJSON line) → the event it maps to, with the
 * same size limit and JSON errors as our own messages. What the worker's Segment topics and
 * `recompute --format segment` call; the collector, which parses request bodies itself, calls
 * `mapSegmentMessage` / `segmentToEvent` directly.
 */
import { InvalidEventError } from '../../errors';
import { parseJson, type ParsedEventFields } from '../parse-event';
import { mapSegmentMessage, type SegmentMappingOptions } from './mapping';

/**
 * `raw` is the mapped event as JSON: what the worker stores as the event's `raw` text, so that
 * a recalculation from the `events` table reads it back with the own-format parser.
 */
export type ParsedSegmentEvent = (ParsedEventFields & { ok: true; raw: string }) | { ok: false; error: InvalidEventError };

/**
 * @param byteLength the size of the message `input` was decoded from, when the caller already
 *   decoded it (the limit is on the message's bytes)
 */
export function parseSegmentEvent(input: string | Buffer, options: SegmentMappingOptions, byteLength?: number): ParsedSegmentEvent {
  const json = parseJson(input, byteLength);
  if (json instanceof InvalidEventError) return { ok: false, error: json };
  const mapped = mapSegmentMessage(json, options);
  if (!mapped.ok) return mapped;
  return { ...mapped.parsed, raw: JSON.stringify(mapped.event) };
}
