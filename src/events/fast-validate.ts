/**
 * The fast path of event validation. The zod schema (`eventSchema`) stays THE definition of a
 * valid event; this compiles the JSON Schema generated from it (`eventJsonSchema()`, the one
 * committed as schemas/event.schema.json) with ajv and adds what JSON Schema cannot say (the
 * calendar and the 2000–2099 range of an ISO timestamp). It only decides accept or reject:
 * when it rejects, the caller runs zod to produce the exact error, so messages never change.
 * Before ajv, a hand-written check (`quickCheck`) accepts the common shape of an event at a
 * third of ajv's cost; it accepts nothing ajv would not, and leaves every other value to ajv.
 *
 * It is only meant for values that come out of `JSON.parse` (plain objects, arrays, strings,
 * finite numbers, booleans, null). test/unit/events/fast-validation.test.ts checks that it
 * agrees with zod on random near-valid and invalid events.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { eventJsonSchema, MAX_PROPERTIES_DEPTH, nestingDepth, type ValidEvent } from './event-schema';
import { digitsAt, MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS, parseIsoTimestamp } from './timestamp';
import { SITE_PATTERN } from './visitor-key';

let compiled: ValidateFunction | null = null;

function validator(): ValidateFunction {
  if (compiled) return compiled;
  const ajv = new Ajv2020({
    allErrors: false,
    messages: false,
    // Lengths: ajv's default counts code points (a lone surrogate counts one), as zod 4's
    // `.min`/`.max` do — not UTF-16 units. Regexes: zod's have no `u` flag, so neither may ours.
    unicodeRegExp: false,
    strict: true,
    // The generated schema has `anyOf` branches without a `type` (strictTypes "log"): intended.
    logger: false,
  });
  compiled = ajv.compile(eventJsonSchema());
  return compiled;
}

/** An object that passed the fast check: ValidEvent's fields, `timestamp` still as sent. */
export type CheckedEvent = Omit<ValidEvent, 'timestamp'> & { timestamp: string | number };

/**
 * The event time in epoch milliseconds when `json` (a value from `JSON.parse`) is a valid
 * event, NaN when it is not (run zod then, for the reason).
 */
export function fastCheckEvent(json: unknown): number {
  const quick = quickCheck(json as Record<string, unknown>);
  if (!Number.isNaN(quick)) return quick; // accepted by the hand check below
  if (!validator()(json)) return NaN;
  // JSON Schema cannot bound nesting depth; zod's refinement does, so check the same here.
  const properties = (json as CheckedEvent).properties;
  if (properties && nestingDepth(properties) > MAX_PROPERTIES_DEPTH) return NaN;
  const timestamp = (json as CheckedEvent).timestamp;
  if (typeof timestamp === 'number') return timestamp; // the schema checked integer and range
  const ms = parseIsoTimestamp(timestamp);
  if (typeof ms === 'string' || ms < MIN_EVENT_TIME_MS || ms > MAX_EVENT_TIME_MS) return NaN;
  return ms;
}

/**
 * A hand-written check of the common shape of an event: the event time in epoch milliseconds
 * when `o` is certainly valid, NaN when it is not or when it is not sure. It accepts only what
 * the schema does (each test below is one of the schema's, or stricter), so whatever it leaves
 * to ajv is decided as before; it is there because ajv's `anyOf` branches (every optional field
 * may be null) cost more than these few type tests on rich events.
 *
 * Stricter than the schema where that is simpler: a string limit is tested in UTF-16 units
 * (never more code points than units), so a long string of astral characters goes to ajv.
 */
function quickCheck(o: Record<string, unknown>): number {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return NaN;
  const eventId = o.event_id;
  const type = o.type;
  if (typeof eventId !== 'string' || eventId.length === 0 || eventId.length > 128) return NaN;
  if (typeof type !== 'string' || type.length === 0 || type.length > 64) return NaN;
  const anonymousId = o.anonymous_id;
  const userId = o.user_id;
  // U+0000 is refused in ids (it joins a site and a user key); left to ajv and zod to say so.
  if (typeof anonymousId === 'string') {
    if (anonymousId.length > 128 || anonymousId.indexOf('\u0000') >= 0) return NaN;
  } else if (anonymousId !== undefined && anonymousId !== null) return NaN;
  if (typeof userId === 'string') {
    if (userId.length > 128 || userId.indexOf('\u0000') >= 0) return NaN;
  } else if (userId !== undefined && userId !== null) return NaN;
  if (!anonymousId && !userId) return NaN;
  const site = o.site;
  if (site !== undefined && site !== null && (typeof site !== 'string' || !SITE_PATTERN.test(site))) return NaN;
  const name = o.name;
  if (name !== undefined && name !== null && (typeof name !== 'string' || name.length > 256)) return NaN;
  const channel = o.channel;
  if (channel !== undefined && channel !== null && channel !== 'web' && channel !== 'app' && channel !== 'server' && channel !== 'store') return NaN;
  const keyEvent = o.key_event;
  if (keyEvent !== undefined && keyEvent !== null && typeof keyEvent !== 'boolean') return NaN;
  const page = o.page as Record<string, unknown> | null | undefined;
  if (page !== undefined && page !== null) {
    if (typeof page !== 'object' || Array.isArray(page)) return NaN;
    if (!optionalString(page.url) || !optionalString(page.path) || !optionalString(page.title) || !optionalString(page.referrer)) return NaN;
  }
  const campaign = o.campaign as Record<string, unknown> | null | undefined;
  if (campaign !== undefined && campaign !== null) {
    if (typeof campaign !== 'object' || Array.isArray(campaign)) return NaN;
    if (
      !optionalString(campaign.source) ||
      !optionalString(campaign.medium) ||
      !optionalString(campaign.name) ||
      !optionalString(campaign.term) ||
      !optionalString(campaign.content)
    ) {
      return NaN;
    }
  }
  const device = o.device as Record<string, unknown> | null | undefined;
  if (device !== undefined && device !== null) {
    if (typeof device !== 'object' || Array.isArray(device)) return NaN;
    if (!optionalString(device.type) || !optionalString(device.os) || !optionalString(device.browser) || !optionalString(device.app_version)) return NaN;
  }
  const geo = o.geo as Record<string, unknown> | null | undefined;
  if (geo !== undefined && geo !== null) {
    if (typeof geo !== 'object' || Array.isArray(geo)) return NaN;
    if (!optionalString(geo.region) || !optionalString(geo.city)) return NaN;
    const country = geo.country;
    if (country !== undefined && country !== null && (typeof country !== 'string' || !COUNTRY.test(country))) return NaN;
  }
  const properties = o.properties;
  if (properties !== undefined && properties !== null) {
    if (typeof properties !== 'object' || Array.isArray(properties)) return NaN;
    if (nestedDeeperThan(properties, MAX_PROPERTIES_DEPTH - 1)) return NaN;
  }
  const timestamp = o.timestamp;
  if (typeof timestamp === 'number') {
    return Number.isInteger(timestamp) && timestamp >= MIN_EVENT_TIME_MS && timestamp <= MAX_EVENT_TIME_MS ? timestamp : NaN;
  }
  if (typeof timestamp !== 'string') return NaN;
  const utc = utcMillisTimestamp(timestamp);
  if (!Number.isNaN(utc)) return utc;
  const ms = parseIsoTimestamp(timestamp);
  return typeof ms === 'string' || ms < MIN_EVENT_TIME_MS || ms > MAX_EVENT_TIME_MS ? NaN : ms;
}

/**
 * `parseIsoTimestamp` for the form most senders use (`toISOString`: `2024-05-01T12:00:00.000Z`)
 * in the years 2000–2099, by character codes instead of the regular expression; NaN for any
 * other text (then `parseIsoTimestamp` decides, so what is accepted does not change).
 */
function utcMillisTimestamp(text: string): number {
  if (text.length !== 24) return NaN;
  const t = text.charCodeAt(10);
  const z = text.charCodeAt(23);
  const point = text.charCodeAt(19);
  if (
    text.charCodeAt(4) !== 45 /* - */ ||
    text.charCodeAt(7) !== 45 ||
    (t !== 84 /* T */ && t !== 116) /* t */ ||
    text.charCodeAt(13) !== 58 /* : */ ||
    text.charCodeAt(16) !== 58 ||
    (point !== 46 /* . */ && point !== 44) /* , */ ||
    (z !== 90 /* Z */ && z !== 122) /* z */
  ) {
    return NaN;
  }
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  const hour = digitsAt(text, 11, 2);
  const minute = digitsAt(text, 14, 2);
  const second = digitsAt(text, 17, 2);
  const millis = digitsAt(text, 20, 3);
  // NaN (a character that is not a digit) fails every comparison.
  if (!(year >= 2000 && year <= 2099 && month >= 1 && month <= 12 && day >= 1 && hour <= 23 && minute <= 59 && second <= 59 && millis >= 0)) return NaN;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] as number))) return NaN;
  return Date.UTC(year, month - 1, day, hour, minute, second, millis);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The schema's geo.country pattern (no `u` flag, as zod's). */
const COUNTRY = /^([A-Za-z]{2})?$/;

function optionalString(value: unknown): boolean {
  return value === undefined || value === null || typeof value === 'string';
}

/**
 * Whether an object or array holds objects or arrays nested more than `levels` levels below it:
 * `nestingDepth(value) > levels + 1`, without building a stack (depth is bounded by `levels`).
 */
function nestedDeeperThan(node: object, levels: number): boolean {
  const children = Array.isArray(node) ? (node as unknown[]) : Object.values(node);
  for (let i = 0; i < children.length; i++) {
    const child = children[i];
    if (typeof child !== 'object' || child === null) continue;
    if (levels === 0 || nestedDeeperThan(child, levels - 1)) return true;
  }
  return false;
}

const TOP_LEVEL = ['event_id', 'type', 'name', 'timestamp', 'anonymous_id', 'user_id', 'site', 'channel', 'key_event'] as const;
const NESTED = {
  page: ['url', 'path', 'title', 'referrer'],
  campaign: ['source', 'medium', 'name', 'term', 'content'],
  device: ['type', 'os', 'browser', 'app_version'],
  geo: ['country', 'region', 'city'],
} as const;

/**
 * What zod's `eventSchema.parse` returns for an event the fast check accepted: declared fields
 * only (present ones, in schema order), nested objects copied the same way, `properties` copied
 * shallowly without a `__proto__` key, and `timestamp` as epoch milliseconds.
 */
export function toValidEvent(json: CheckedEvent, ts: number): ValidEvent {
  const src = json as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of TOP_LEVEL) if (key in src) out[key] = key === 'timestamp' ? ts : src[key];
  for (const key of Object.keys(NESTED) as (keyof typeof NESTED)[]) {
    if (!(key in src)) continue;
    const value = src[key] as Record<string, unknown> | null;
    if (value === null) {
      out[key] = null;
      continue;
    }
    const copy: Record<string, unknown> = {};
    for (const field of NESTED[key]) if (field in value) copy[field] = value[field];
    out[key] = copy;
  }
  if ('properties' in src) {
    const value = src.properties as Record<string, unknown> | null;
    out.properties = value === null ? null : copyProperties(value);
  }
  return out as unknown as ValidEvent;
}

/**
 * zod's copy of `properties`: every own key but `"__proto__"`, which JSON.parse makes an own
 * property and a plain object assignment would not.
 */
export function copyProperties(properties: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(properties)) if (key !== '__proto__') copy[key] = properties[key];
  return copy;
}
