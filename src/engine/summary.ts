/**
 * What a session has to remember about its events to produce every session field, kept so
 * that two summaries combine into the summary of the union of their events, whatever order the
 * events arrived in. That is what lets one incremental engine serve out-of-order streaming,
 * merges of bridged sessions, and sorted recalculation alike.
 *
 * "First"/"last" always mean by the event order of the session rules: `(timestamp, event_id)`.
 */
import type { Channel } from '../events/event-schema';
import type { SessionEvent } from '../events/session-event';

/** A value taken from one event, with that event's order key: `[value, ts, eventId]`. */
export type Pick = [value: string, ts: number, eventId: string];

/** Dimensions filled by the first event that has a non-empty value. */
export const FIRST_NON_EMPTY = [
  'anonymousId',
  'deviceType',
  'os',
  'browser',
  'appVersion',
  'country',
  'region',
  'city',
] as const;
export type FirstNonEmptyField = (typeof FIRST_NON_EMPTY)[number];

export interface SessionSummary {
  startTs: number;
  startId: string;
  endTs: number;
  endId: string;
  events: number;
  views: number;
  keyEvent: boolean;
  /** Channel and attribution of the first event. */
  channel: Channel;
  source: string;
  medium: string;
  campaign: string;
  term: string;
  content: string;
  /** Location of the first and the last view. */
  entry: Pick | null;
  exit: Pick | null;
  /** Last non-empty user id: a login mid-session attributes the whole session to the user. */
  userId: Pick | null;
  firsts: Partial<Record<FirstNonEmptyField, Pick>>;
}

/** Is event order key (aTs, aId) strictly before (bTs, bId)? */
export function isBefore(aTs: number, aId: string, bTs: number, bId: string): boolean {
  return aTs < bTs || (aTs === bTs && aId < bId);
}

export function summaryOf(event: SessionEvent): SessionSummary {
  const pick = (value: string): Pick | null => (value ? [value, event.ts, event.eventId] : null);
  const firsts: Partial<Record<FirstNonEmptyField, Pick>> = {};
  for (const field of FIRST_NON_EMPTY) {
    const value = event[field];
    if (value) firsts[field] = [value, event.ts, event.eventId];
  }
  return {
    startTs: event.ts,
    startId: event.eventId,
    endTs: event.ts,
    endId: event.eventId,
    events: 1,
    views: event.isView ? 1 : 0,
    keyEvent: event.keyEvent,
    channel: event.channel,
    source: event.source,
    medium: event.medium,
    campaign: event.campaign,
    term: event.term,
    content: event.content,
    entry: event.isView ? [event.location, event.ts, event.eventId] : null,
    exit: event.isView ? [event.location, event.ts, event.eventId] : null,
    userId: pick(event.userId),
    firsts,
  };
}

// (`Pick` in this module is the value-with-order-key tuple, hence no `Pick<…>` here.)
interface Attribution {
  channel: Channel;
  source: string;
  medium: string;
  campaign: string;
  term: string;
  content: string;
}

/** The first event decides channel and attribution: copy them from the new first one. */
function takeAttribution(into: Attribution, from: Attribution): void {
  into.channel = from.channel;
  into.source = from.source;
  into.medium = from.medium;
  into.campaign = from.campaign;
  into.term = from.term;
  into.content = from.content;
}

/**
 * Folds `other` into `into` (mutating `into`): afterwards `into` summarises the events of both.
 * The two must hold disjoint events (the engine de-duplicates before it merges).
 */
export function mergeSummary(into: SessionSummary, other: SessionSummary): void {
  if (isBefore(other.startTs, other.startId, into.startTs, into.startId)) {
    into.startTs = other.startTs;
    into.startId = other.startId;
    takeAttribution(into, other);
  }
  if (isBefore(into.endTs, into.endId, other.endTs, other.endId)) {
    into.endTs = other.endTs;
    into.endId = other.endId;
  }
  into.events += other.events;
  into.views += other.views;
  into.keyEvent = into.keyEvent || other.keyEvent;
  into.entry = earlier(into.entry, other.entry);
  into.exit = later(into.exit, other.exit);
  into.userId = later(into.userId, other.userId);
  for (const field of FIRST_NON_EMPTY) {
    const chosen = earlier(into.firsts[field] ?? null, other.firsts[field] ?? null);
    if (chosen) into.firsts[field] = chosen;
  }
}

/**
 * `mergeSummary(into, summaryOf(event))` without building the event's summary: the same result,
 * allocating only the picks the event wins. The engine's hot path (an event joining a session).
 */
export function mergeEvent(into: SessionSummary, event: SessionEvent): void {
  const ts = event.ts;
  const id = event.eventId;
  if (isBefore(ts, id, into.startTs, into.startId)) {
    into.startTs = ts;
    into.startId = id;
    takeAttribution(into, event);
  }
  if (isBefore(into.endTs, into.endId, ts, id)) {
    into.endTs = ts;
    into.endId = id;
  }
  into.events += 1;
  if (event.isView) into.views += 1;
  into.keyEvent = into.keyEvent || event.keyEvent;
  if (event.isView) {
    // earlier(into.entry, pick) and later(into.exit, pick)
    const entry = into.entry;
    if (!entry || isBefore(ts, id, entry[1], entry[2])) into.entry = [event.location, ts, id];
    const exit = into.exit;
    if (!exit || isBefore(exit[1], exit[2], ts, id)) into.exit = [event.location, ts, id];
  }
  if (event.userId) {
    const userId = into.userId;
    if (!userId || isBefore(userId[1], userId[2], ts, id)) into.userId = [event.userId, ts, id];
  }
  const firsts = into.firsts;
  for (const field of FIRST_NON_EMPTY) {
    const value = event[field];
    if (!value) continue;
    const current = firsts[field];
    if (!current || isBefore(ts, id, current[1], current[2])) firsts[field] = [value, ts, id];
  }
}

function earlier(a: Pick | null, b: Pick | null): Pick | null {
  if (!a) return b;
  if (!b) return a;
  return isBefore(b[1], b[2], a[1], a[2]) ? b : a;
}

function later(a: Pick | null, b: Pick | null): Pick | null {
  if (!a) return b;
  if (!b) return a;
  return isBefore(a[1], a[2], b[1], b[2]) ? b : a;
}
