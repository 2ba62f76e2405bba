/**
 * Moving a file of events to the present (`produce --redate`): every timestamp shifts by the same
 * amount, chosen so that the newest event lands a minute before now. One shift for all keeps
 * every gap, so the sessions are the same sessions (new ids, as ids include the start time),
 * only recent: "last 30 days" queries and dashboards show them, the latest sessions are still
 * open ("active now"), and nothing is stamped in the future (the worker would hold back an event
 * stamped ahead of its clock). Whole seconds, so millisecond parts stay as they were.
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

/** How far before now the newest event lands. */
export const REDATE_LEAD_MS = 60_000;

/** The shift (whole seconds, ≥ 0 when the events are in the past) that puts `latestMs` about a minute before `nowMs`. */
export function redateShift(latestMs: number, nowMs: number): number {
  return Math.floor((nowMs - REDATE_LEAD_MS - latestMs) / 1000) * 1000;
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
