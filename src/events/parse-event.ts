/**
 * Turns the bytes of one message (a Kafka value or an NDJSON line) into a validated event, or
 * into an `InvalidEventError` naming the field and the reason. It never throws for bad input:
 * callers route failures to the dead-letter topic or the rejects file, they never drop them.
 */
import type { z } from 'zod';
import { InvalidEventError } from '../errors';
import { eventSchema, type ValidEvent } from './event-schema';
import { toSessionEvent, type SessionEvent } from './session-event';

/** SPEC §1: one JSON object per message, UTF-8, at most 64 KiB. */
export const MAX_EVENT_BYTES = 64 * 1024;

export type ParsedEvent =
  | { ok: true; event: SessionEvent; valid: ValidEvent }
  | { ok: false; error: InvalidEventError };

export function parseEvent(input: string | Buffer): ParsedEvent {
  const bytes = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.length;
  if (bytes > MAX_EVENT_BYTES) {
    return fail('', `message is ${bytes} bytes; the limit is ${MAX_EVENT_BYTES}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(typeof input === 'string' ? input : input.toString('utf8'));
  } catch (err) {
    return fail('', `not valid JSON (${(err as Error).message})`);
  }
  return validateEvent(json);
}

export function validateEvent(json: unknown): ParsedEvent {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail('', 'expected a JSON object');
  }
  const result = eventSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0] as z.core.$ZodIssue;
    return fail(issue.path.join('.'), describeIssue(issue));
  }
  return { ok: true, event: toSessionEvent(result.data), valid: result.data };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return 'is required';
  return issue.message;
}

function fail(field: string, reason: string): ParsedEvent {
  return { ok: false, error: new InvalidEventError(field, reason) };
}
