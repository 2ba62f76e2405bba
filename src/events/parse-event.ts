/**
 * Turns the bytes of one message (a Kafka value or an NDJSON line) into a validated event, or
 * into an `InvalidEventError` naming the field and the reason. It never throws for bad input:
 * callers route failures to the dead-letter topic or the rejects file, they never drop them.
 */
import type { z } from 'zod';
import { InvalidEventError } from '../errors';
import { eventSchema, type ValidEvent } from './event-schema';
import { fastCheckEvent, toValidEvent, type CheckedEvent } from './fast-validate';
import { sessionEventOf, toSessionEvent, type EventFields, type SessionEvent } from './session-event';
import { describeInvalidUtf8, isUtf8, printable } from './utf8';
import { DEFAULT_SITE } from './visitor-key';

/** The event format: one JSON object per message, UTF-8, at most 64 KiB. */
export const MAX_EVENT_BYTES = 64 * 1024;

export type ParsedEvent =
  | { ok: true; event: SessionEvent; valid: ValidEvent }
  | { ok: false; error: InvalidEventError };

/**
 * @param site the site of an event that names none (its topic's, say); the event's own `site`
 *   wins. Every parser below takes it the same way, `default` when not given.
 */
export function parseEvent(input: string | Buffer, site: string = DEFAULT_SITE): ParsedEvent {
  const parsed = parseFast(input, undefined, site);
  if (!('checked' in parsed)) return parsed;
  return { ok: true, event: sessionEventOf(parsed.checked, parsed.ts, site), valid: toValidEvent(parsed.checked, parsed.ts) };
}

export type ParsedEventFields =
  | { ok: true; event: SessionEvent; fields: EventFields; ts: number }
  | { ok: false; error: InvalidEventError };

/**
 * `parseEvent` without the `ValidEvent` copy, for the worker's hot path: `fields` may be the
 * parsed JSON itself (valid, but it can carry keys the schema does not know, so read only the
 * schema's fields from it) and `ts` is the event time in epoch milliseconds.
 *
 * @param byteLength the size of the message `input` was decoded from, when the caller already
 *   decoded it (the limit is on the message's bytes, which invalid UTF-8 makes differ)
 */
export function parseEventFields(input: string | Buffer, byteLength?: number, site: string = DEFAULT_SITE): ParsedEventFields {
  const parsed = parseFast(input, byteLength, site);
  if ('checked' in parsed) return { ok: true, event: sessionEventOf(parsed.checked, parsed.ts, site), fields: parsed.checked, ts: parsed.ts };
  return parsed.ok ? { ok: true, event: parsed.event, fields: parsed.valid, ts: parsed.valid.timestamp } : parsed;
}

/**
 * `parseEvent` for callers that only need the engine's view (recalculation): the same
 * acceptance and the same errors, without building the `ValidEvent`.
 */
export function parseSessionEvent(input: string, site: string = DEFAULT_SITE): SessionEvent | InvalidEventError {
  const parsed = parseFast(input, undefined, site);
  if ('checked' in parsed) return sessionEventOf(parsed.checked, parsed.ts, site);
  return parsed.ok ? parsed.event : parsed.error;
}

/**
 * What the three parsers share: the JSON object itself and its time when it passes the fast
 * check (each builds what it needs from it), otherwise zod's verdict.
 */
function parseFast(input: string | Buffer, byteLength: number | undefined, site: string): { checked: CheckedEvent; ts: number } | ParsedEvent {
  const json = parseJson(input, byteLength);
  if (json instanceof InvalidEventError) return { ok: false, error: json };
  const ts = fastCheckEvent(json);
  return Number.isNaN(ts) ? validateEvent(json, site) : { checked: json as CheckedEvent, ts };
}

/**
 * `parseEventFields` for a value that is already parsed, such as the event a Segment message
 * was mapped to: the same acceptance and errors, with `fields` the value itself when valid.
 */
export function checkEventValue(json: unknown, site: string = DEFAULT_SITE): ParsedEventFields {
  const ts = fastCheckEvent(json);
  if (!Number.isNaN(ts)) return { ok: true, event: sessionEventOf(json as CheckedEvent, ts, site), fields: json as CheckedEvent, ts };
  const parsed = validateEvent(json, site);
  return parsed.ok ? { ok: true, event: parsed.event, fields: parsed.valid, ts: parsed.valid.timestamp } : parsed;
}

/** The size limit and JSON syntax of the event format: the parsed value, or the error. */
export function parseJson(input: string | Buffer, byteLength?: number): unknown {
  // A UTF-16 code unit is at most 3 bytes of UTF-8, so short strings need no counting.
  const bytes =
    byteLength ?? (typeof input !== 'string' ? input.length : input.length * 3 <= MAX_EVENT_BYTES ? input.length : Buffer.byteLength(input, 'utf8'));
  if (bytes > MAX_EVENT_BYTES) {
    return new InvalidEventError('', `message is ${bytes} bytes; the limit is ${MAX_EVENT_BYTES}`);
  }
  // Bytes are checked before decoding: the decoder would replace what is not UTF-8 silently.
  if (typeof input !== 'string' && !isUtf8(input)) return notUtf8(input);
  try {
    return JSON.parse(typeof input === 'string' ? input : input.toString('utf8'));
  } catch (err) {
    // JSON.parse quotes the start of the text: escape what a terminal or a log would act on.
    return new InvalidEventError('', `not valid JSON (${printable((err as Error).message)})`);
  }
}

/** The error for a message whose bytes are not UTF-8 (events are UTF-8 only): where, never the bytes. */
export function notUtf8(bytes: Uint8Array): InvalidEventError {
  return new InvalidEventError('', describeInvalidUtf8(bytes));
}

/** Validates any value with the zod schema (the definition of a valid event). */
export function validateEvent(json: unknown, site: string = DEFAULT_SITE): ParsedEvent {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail('', 'expected a JSON object');
  }
  const result = eventSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0] as z.core.$ZodIssue;
    return fail(issue.path.join('.'), describeIssue(issue));
  }
  return { ok: true, event: toSessionEvent(result.data, site), valid: result.data };
}

/** A zod issue's message as our errors word it ("is required" for a missing field). */
export function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return 'is required';
  return issue.message;
}

function fail(field: string, reason: string): ParsedEvent {
  return { ok: false, error: new InvalidEventError(field, reason) };
}
