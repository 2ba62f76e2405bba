/**
 * Turns one partition batch of Kafka messages into engine input, without I/O: validates each
 * message, advances the partition's event-time watermark in offset order, and groups the valid
 * events by user key. Each event keeps the watermark at its arrival, which is what decides
 * whether it is late (grouping by user must not change that).
 */
import { InvalidEventError } from '../errors';
import type { ValidEvent } from '../events/event-schema';
import { parseEvent } from '../events/parse-event';
import type { SessionEvent } from '../events/session-event';

export interface IncomingMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
}

export interface PlannedEvent {
  event: SessionEvent;
  valid: ValidEvent;
  raw: string;
  offset: string;
  arrivalWatermark: number;
}

export interface RejectedMessage {
  message: IncomingMessage;
  error: InvalidEventError;
}

export interface BatchPlan {
  events: PlannedEvent[];
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
export function planBatch(messages: readonly IncomingMessage[], watermark: number, maxEventTimeMs: number): BatchPlan {
  const plan: BatchPlan = { events: [], rejected: [], byUser: new Map(), watermark };
  for (const message of messages) {
    if (!message.value || message.value.length === 0) {
      plan.rejected.push({ message, error: new InvalidEventError('', 'empty message') });
      continue;
    }
    const parsed = parseEvent(message.value);
    if (!parsed.ok) {
      plan.rejected.push({ message, error: parsed.error });
      continue;
    }
    const planned: PlannedEvent = {
      event: parsed.event,
      valid: parsed.valid,
      raw: message.value.toString('utf8'),
      offset: message.offset,
      arrivalWatermark: plan.watermark,
    };
    plan.watermark = Math.max(plan.watermark, Math.min(parsed.event.ts, maxEventTimeMs));
    plan.events.push(planned);
    const list = plan.byUser.get(parsed.event.userKey);
    if (list) list.push(planned);
    else plan.byUser.set(parsed.event.userKey, [planned]);
  }
  return plan;
}
