/**
 * The fast path of event validation. The zod schema (`eventSchema`) stays THE definition of a
 * valid event; this compiles the JSON Schema generated from it (`eventJsonSchema()`, the one
 * committed as schemas/event.schema.json) with ajv and adds what JSON Schema cannot say (the
 * calendar and the 2000–2099 range of an ISO timestamp). It only decides accept or reject:
 * when it rejects, the caller runs zod to produce the exact error, so messages never change.
 *
 * It is only meant for values that come out of `JSON.parse` (plain objects, arrays, strings,
 * finite numbers, booleans, null). test/unit/events/fast-validation.test.ts checks that it
 * agrees with zod on random near-valid and invalid events.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { eventJsonSchema, MAX_PROPERTIES_DEPTH, nestingDepth, type ValidEvent } from './event-schema';
import { MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS, parseIsoTimestamp } from './timestamp';

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

const TOP_LEVEL = ['event_id', 'type', 'name', 'timestamp', 'anonymous_id', 'user_id', 'channel', 'key_event'] as const;
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
