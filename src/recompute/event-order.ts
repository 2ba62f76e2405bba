/**
 * Recalculation order and the compact form events take in spill files. Events are sorted by
 * `(site, user_key, timestamp, event_id)` (the visitor key's order, src/events/visitor-key.ts); two copies of one event id at the same time are ordered by
 * their content, so which copy counts never depends on the order of the input lines.
 */
import type { Channel } from '../events/event-schema';
import type { SessionEvent } from '../events/session-event';
import { compareVisitorKeys } from '../events/visitor-key';

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

/**
 * One line of a spill or bucket file: the fields in `FIELDS` order, separated by U+001F, the
 * booleans as 0/1. Safe for any string content: when a string field holds a newline, U+001F or
 * U+001B, the line is instead U+001B followed by the fields as a JSON array (JSON escapes all
 * three), which no plain line can start with.
 *
 * `mayHoldReserved: false` skips looking for those characters: for an event parsed from a JSON
 * line without a backslash, as JSON strings can only hold control characters escaped.
 */
export function encodeEvent(e: SessionEvent, mayHoldReserved = true): string {
  if (mayHoldReserved && holdsReserved(e)) return ESCAPE + jsonOf(e);
  // One join builds one flat string (a template literal would build a rope of 40 pieces).
  return [
    e.userKey,
    e.eventId,
    e.ts,
    e.isView ? 1 : 0,
    e.keyEvent ? 1 : 0,
    e.channel,
    e.location,
    e.anonymousId,
    e.userId,
    e.source,
    e.medium,
    e.campaign,
    e.term,
    e.content,
    e.deviceType,
    e.os,
    e.browser,
    e.appVersion,
    e.country,
    e.region,
    e.city,
  ].join('\x1f');
}

function holdsReserved(e: SessionEvent): boolean {
  return (
    UNSAFE.test(e.userKey) ||
    UNSAFE.test(e.eventId) ||
    UNSAFE.test(e.channel) ||
    UNSAFE.test(e.location) ||
    UNSAFE.test(e.anonymousId) ||
    UNSAFE.test(e.userId) ||
    UNSAFE.test(e.source) ||
    UNSAFE.test(e.medium) ||
    UNSAFE.test(e.campaign) ||
    UNSAFE.test(e.term) ||
    UNSAFE.test(e.content) ||
    UNSAFE.test(e.deviceType) ||
    UNSAFE.test(e.os) ||
    UNSAFE.test(e.browser) ||
    UNSAFE.test(e.appVersion) ||
    UNSAFE.test(e.country) ||
    UNSAFE.test(e.region) ||
    UNSAFE.test(e.city)
  );
}

// eslint-disable-next-line no-control-regex -- exactly the characters the line format reserves
const UNSAFE = /[\n\x1b\x1f]/;
const ESCAPE = '\x1b';

export function decodeEvent(line: string): SessionEvent {
  if (line.charCodeAt(0) === 0x1b) {
    const v = JSON.parse(line.slice(1)) as unknown[];
    return eventOf(v[0] as string, v[1] as string, v[2] as number, v[3] as boolean, v[4] as boolean, v as string[]);
  }
  return new FieldReader(line).event();
}

/**
 * Reads a plain line's fields in order with `indexOf` and `slice`: cheaper than `split`, which
 * builds an array of them first.
 */
class FieldReader {
  private at = 0;
  private fields = 0;

  constructor(private readonly line: string) {}

  event(): SessionEvent {
    const event: SessionEvent = {
      userKey: this.next(),
      eventId: this.next(),
      ts: Number(this.next()),
      isView: this.next() === '1',
      keyEvent: this.next() === '1',
      channel: this.next() as Channel,
      location: this.next(),
      anonymousId: this.next(),
      userId: this.next(),
      source: this.next(),
      medium: this.next(),
      campaign: this.next(),
      term: this.next(),
      content: this.next(),
      deviceType: this.next(),
      os: this.next(),
      browser: this.next(),
      appVersion: this.next(),
      country: this.next(),
      region: this.next(),
      city: this.next(),
    };
    if (this.at <= this.line.length) throw new Error(`corrupt spill line (more than ${FIELDS.length} fields)`);
    return event;
  }

  private next(): string {
    const line = this.line;
    if (this.at > line.length) throw new Error(`corrupt spill line (${this.fields} fields)`);
    let end = line.indexOf('\x1f', this.at);
    if (end < 0) end = line.length;
    const value = line.slice(this.at, end);
    this.at = end + 1;
    this.fields += 1;
    return value;
  }
}

function eventOf(userKey: string, eventId: string, ts: number, isView: boolean, keyEvent: boolean, v: string[]): SessionEvent {
  return {
    userKey,
    eventId,
    ts,
    isView,
    keyEvent,
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

/** The fields as a JSON array: what two copies of one event id at one time are ordered by. */
function jsonOf(event: SessionEvent): string {
  return JSON.stringify(FIELDS.map((field) => event[field]));
}

/** Recalculation order: `(site, user_key, timestamp, event_id)`, then the content. */
export function compareEvents(a: SessionEvent, b: SessionEvent): number {
  if (a.userKey !== b.userKey) return compareVisitorKeys(a.userKey, b.userKey);
  return compareSameUser(a, b);
}

/** `compareEvents` for two events of one user key. */
export function compareSameUser(a: SessionEvent, b: SessionEvent): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  if (a.eventId !== b.eventId) return a.eventId < b.eventId ? -1 : 1;
  if (sameFields(a, b)) return 0; // exact copies, the common case: no need to serialise
  const ea = jsonOf(a);
  const eb = jsonOf(b);
  return ea < eb ? -1 : ea > eb ? 1 : 0;
}

function sameFields(a: SessionEvent, b: SessionEvent): boolean {
  for (const field of FIELDS) if (a[field] !== b[field]) return false;
  return true;
}
