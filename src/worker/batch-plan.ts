/**
 * Turns one partition batch of Kafka messages into engine input, without I/O: validates each
 * message (UTF-8 first, then JSON and the event rules; handing valid ones with their text to an optional sink), advances the partition's
 * event-time watermark in offset order, and groups the valid events by visitor key (site and
 * user key, src/events/visitor-key.ts). Each event
 * keeps the watermark at its arrival, which is what decides whether it is late (grouping by
 * user must not change that).
 */
import { InvalidEventError } from '../errors';
import { notUtf8, parseEventFields, type ParsedEventFields } from '../events/parse-event';
import { parseSegmentEvent, type SegmentMappingOptions } from '../events/segment';
import { isUtf8 } from '../events/utf8';
import type { EventFields, SessionEvent } from '../events/session-event';

export interface IncomingMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
  /**
   * Set for a message of a Segment topic: it is a Segment Spec message, mapped to our own
   * event with these options (the worker tags the messages of those topics).
   */
  segment?: SegmentMappingOptions;
  /**
   * The site of the message's topic (KAFKA_TOPIC_SITES), for an event that names none; absent
   * for a topic of the site `default`. (A Segment topic's site is in `segment.site`.)
   */
  site?: string;
}

export interface PlannedEvent {
  event: SessionEvent;
  offset: string;
  arrivalWatermark: number;
}

/**
 * Receives each valid event as it is planned (its fields, time and message text). The plan
 * itself keeps only the engine's view: whatever else is made of an event (its `events` row)
 * should be made and written away here, so a batch does not hold every parsed event until it
 * is done (they would all outlive V8's young generation and make garbage collection dearer).
 */
export type ValidEventSink = (fields: EventFields, ts: number, raw: string | Uint8Array, offset: string, topicSite: string | undefined) => void;

export interface RejectedMessage {
  message: IncomingMessage;
  error: InvalidEventError;
}

export interface BatchPlan {
  rejected: RejectedMessage[];
  byUser: Map<string, PlannedEvent[]>;
  /** Watermark after the batch. */
  watermark: number;
}

/**
 * @param watermark event-time watermark before the batch (-Infinity when none yet)
 * @param maxEventTimeMs an event time beyond this (wall clock plus allowed skew) does not move
 *   the watermark, so one event from a wrong clock cannot make everything else late
 */
export function planBatch(messages: readonly IncomingMessage[], watermark: number, maxEventTimeMs: number, onValid?: ValidEventSink): BatchPlan {
  const plan: BatchPlan = { rejected: [], byUser: new Map(), watermark };
  for (const message of messages) {
    if (!message.value || message.value.length === 0) {
      plan.rejected.push({ message, error: new InvalidEventError('', 'empty message') });
      continue;
    }
    // UTF-8 only. `toString` would replace bad bytes with U+FFFD and accept the event.
    if (!isUtf8(message.value)) {
      plan.rejected.push({ message, error: notUtf8(message.value) });
      continue;
    }
    const text = message.value.toString('utf8');
    // What the `events` row keeps: the message's bytes as they came (copied into the insert,
    // never encoded again).
    let raw: string | Uint8Array = message.value;
    let parsed: ParsedEventFields;
    if (message.segment) {
      const segment = parseSegmentEvent(text, message.segment, message.value.length);
      // The `events` row keeps the event the message was mapped to: recalculation from the
      // table reads `raw` back as an event of our own format.
      if (segment.ok) raw = segment.raw;
      parsed = segment;
    } else {
      parsed = parseEventFields(text, message.value.length, message.site);
    }
    if (!parsed.ok) {
      plan.rejected.push({ message, error: parsed.error });
      continue;
    }
    onValid?.(parsed.fields, parsed.ts, raw, message.offset, message.site);
    const planned: PlannedEvent = { event: parsed.event, offset: message.offset, arrivalWatermark: plan.watermark };
    plan.watermark = Math.max(plan.watermark, Math.min(parsed.event.ts, maxEventTimeMs));
    const list = plan.byUser.get(parsed.event.userKey);
    if (list) list.push(planned);
    else plan.byUser.set(parsed.event.userKey, [planned]);
  }
  return plan;
}
