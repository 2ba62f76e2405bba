/**
 * Recalculation order and the compact form events take in spill files. Events are sorted by
 * `(user_key, timestamp, event_id)`; two copies of one event id at the same time are ordered by
 * their content, so which copy counts never depends on the order of the input lines.
 */
import type { Channel } from '../events/event-schema';
import type { SessionEvent } from '../events/session-event';

const FIELDS = [
  'userKey',
  'eventId',
  'ts',
  'isView',
  'keyEvent',
  'channel',
  'location',
  'anonymousId',
  'userId',
  'source',
  'medium',
  'campaign',
  'term',
  'content',
  'deviceType',
  'os',
  'browser',
  'appVersion',
  'country',
  'region',
  'city',
] as const satisfies readonly (keyof SessionEvent)[];

/** One line of a spill file: the event's fields as a JSON array, in `FIELDS` order. */
export function encodeEvent(event: SessionEvent): string {
  return JSON.stringify(FIELDS.map((field) => event[field]));
}

export function decodeEvent(line: string): SessionEvent {
  const v = JSON.parse(line) as unknown[];
  return {
    userKey: v[0] as string,
    eventId: v[1] as string,
    ts: v[2] as number,
    isView: v[3] as boolean,
    keyEvent: v[4] as boolean,
    channel: v[5] as Channel,
    location: v[6] as string,
    anonymousId: v[7] as string,
    userId: v[8] as string,
    source: v[9] as string,
    medium: v[10] as string,
    campaign: v[11] as string,
    term: v[12] as string,
    content: v[13] as string,
    deviceType: v[14] as string,
    os: v[15] as string,
    browser: v[16] as string,
    appVersion: v[17] as string,
    country: v[18] as string,
    region: v[19] as string,
    city: v[20] as string,
  };
}

export function compareEvents(a: SessionEvent, b: SessionEvent): number {
  if (a.userKey !== b.userKey) return a.userKey < b.userKey ? -1 : 1;
  if (a.ts !== b.ts) return a.ts - b.ts;
  if (a.eventId !== b.eventId) return a.eventId < b.eventId ? -1 : 1;
  const ea = encodeEvent(a);
  const eb = encodeEvent(b);
  return ea < eb ? -1 : ea > eb ? 1 : 0;
}
