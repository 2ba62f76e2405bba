/**
 * Moving a file of events to the present (`produce --redate`): every timestamp shifts by the same
 * whole number of days, chosen so that the newest event lands within the last 24 hours. Whole
 * days keep times of day and weekdays, and one shift for all keeps every gap, so the sessions
 * are the same sessions, only recent enough for "last 30 days" queries and dashboards, and not in
 * the future (the worker would hold back an event stamped ahead of the clock).
 */
import { formatTimestamp, MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS, parseIsoTimestamp } from './timestamp';

export const DAY_MS = 86_400_000;

/** The event time of a JSON event in epoch ms, or null when its timestamp is missing or invalid. */
export function eventTimeOf(json: Record<string, unknown>): number | null {
  const value = json.timestamp;
  let ms: number | string;
  if (typeof value === 'number') ms = Number.isInteger(value) ? value : 'not whole';
  else if (typeof value === 'string') ms = parseIsoTimestamp(value);
  else return null;
  return typeof ms === 'number' && ms >= MIN_EVENT_TIME_MS && ms <= MAX_EVENT_TIME_MS ? ms : null;
}

/** The shift (a multiple of a day, ≥ 0 when the events are in the past) that brings `latestMs` into (now − 1 day, now]. */
export function redateShift(latestMs: number, nowMs: number): number {
  return Math.floor((nowMs - latestMs) / DAY_MS) * DAY_MS;
}

/**
 * Shifts the event's timestamp by `shiftMs` in place, keeping its form (epoch ms stays a number,
 * a string becomes ISO-8601 UTC). Returns false, and leaves the event alone, when it has no
 * valid timestamp (the worker will dead-letter it as it would have anyway).
 */
export function redateEvent(json: Record<string, unknown>, shiftMs: number): boolean {
  const ms = eventTimeOf(json);
  if (ms === null) return false;
  json.timestamp = typeof json.timestamp === 'number' ? ms + shiftMs : formatTimestamp(ms + shiftMs);
  return true;
}
