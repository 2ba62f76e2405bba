/**
 * The event format as a zod schema: the single definition of a valid event.
 * `schemas/event.schema.json` is generated from it (`npm run schema:event`) and a test fails
 * when the committed file drifts from this one.
 *
 * `null` is accepted wherever a field is optional and means "absent": producers serialising
 * optional fields as null are common, and rejecting them would lose real traffic.
 */
import { z } from 'zod';
import { ISO_TIMESTAMP_PATTERN, MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS, parseIsoTimestamp } from './timestamp';
import { SITE_PATTERN } from './visitor-key';

export const CHANNELS = ['web', 'app', 'server', 'store'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Event types that count as views (session rules: `views`, entry and exit pages). */
export const VIEW_TYPES: ReadonlySet<string> = new Set(['page_view', 'screen_view']);

/**
 * `properties` is free-form, but a hostile message could nest it thousands of levels deep (64 KiB
 * of brackets) to make every recursive consumer — ours, a JSON library, a ClickHouse JSON
 * function — work hard or overflow its stack. Real properties are shallow.
 */
export const MAX_PROPERTIES_DEPTH = 10;

/** Levels of nested objects and arrays in a JSON value (a flat object is 1), without recursion. */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null) continue;
    if (depth > deepest) deepest = depth;
    if (deepest > MAX_PROPERTIES_DEPTH) return deepest; // enough to reject; stop early
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push([child, depth + 1]);
  }
  return deepest;
}

const optionalText = (max?: number) => (max === undefined ? z.string() : z.string().max(max)).nullish();

/**
 * An id that may become the user key. U+0000 is refused: inside the worker a site and a user
 * key are joined by it into one key (src/events/visitor-key.ts), and the state's repair log and
 * ClickHouse's external tables split on it.
 */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly the character refused
const NO_NUL = /^[^\u0000]*$/;
const optionalId = () =>
  z
    .string()
    .max(128)
    .regex(NO_NUL, 'must not contain U+0000 (the user key of a site is built with it as separator)')
    .nullish();

const timestampSchema = z
  .union([
    z.string().regex(new RegExp(ISO_TIMESTAMP_PATTERN), 'expected an ISO-8601 date-time with a zone'),
    z
      .number()
      .int('expected whole epoch milliseconds')
      .min(MIN_EVENT_TIME_MS, 'must be within the years 2000–2099')
      .max(MAX_EVENT_TIME_MS, 'must be within the years 2000–2099'),
  ], { error: 'expected an ISO-8601 string with a zone or epoch milliseconds' })
  .describe('Event time: ISO-8601 with a zone, or epoch milliseconds; within the years 2000–2099.')
  .transform((value, ctx): number => {
    const ms = typeof value === 'number' ? value : parseIsoTimestamp(value);
    if (typeof ms === 'string') {
      ctx.addIssue({ code: 'custom', message: ms });
      return z.NEVER;
    }
    if (ms < MIN_EVENT_TIME_MS || ms > MAX_EVENT_TIME_MS) {
      ctx.addIssue({ code: 'custom', message: 'must be within the years 2000–2099' });
      return z.NEVER;
    }
    return ms;
  });

export const eventSchema = z
  .object({
    event_id: z.string().min(1).max(128).describe('De-duplication key, unique per user key.'),
    type: z.string().min(1).max(64).describe('Event type; page_view and screen_view are views.'),
    name: optionalText(256),
    timestamp: timestampSchema,
    anonymous_id: optionalId().describe('First-party device or visitor id.'),
    user_id: optionalId().describe('Known user id.'),
    site: z
      .string()
      .regex(SITE_PATTERN, 'expected 1-64 characters of a-z 0-9 . _ -, starting with a letter or a digit')
      .nullish()
      .describe('The site the event belongs to (identity, sessions and people are per site); default when absent.'),
    channel: z.enum(CHANNELS).nullish().describe('Entry point; web when absent.'),
    key_event: z.boolean().nullish().describe('True for a conversion.'),
    page: z
      .object({ url: optionalText(), path: optionalText(), title: optionalText(), referrer: optionalText() })
      .nullish(),
    campaign: z
      .object({
        source: optionalText(),
        medium: optionalText(),
        name: optionalText(),
        term: optionalText(),
        content: optionalText(),
      })
      .nullish(),
    device: z
      .object({ type: optionalText(), os: optionalText(), browser: optionalText(), app_version: optionalText() })
      .nullish(),
    geo: z
      .object({
        country: z
          .string()
          .regex(/^([A-Za-z]{2})?$/, 'expected an ISO 3166-1 alpha-2 country code')
          .nullish(),
        region: optionalText(),
        city: optionalText(),
      })
      .nullish(),
    properties: z
      .record(z.string(), z.unknown())
      .superRefine((value, ctx) => {
        if (nestingDepth(value) > MAX_PROPERTIES_DEPTH) {
          ctx.addIssue({ code: 'custom', message: `nested deeper than ${MAX_PROPERTIES_DEPTH} levels` });
        }
      })
      .nullish()
      .describe(`Free-form; not interpreted; at most ${MAX_PROPERTIES_DEPTH} levels of nested objects and arrays.`),
  })
  .superRefine((event, ctx) => {
    if (!event.anonymous_id && !event.user_id) {
      ctx.addIssue({
        code: 'custom',
        path: ['anonymous_id'],
        message: 'at least one of anonymous_id and user_id must be a non-empty string',
      });
    }
  });

/** A validated event: ids, names and nested objects as sent, `timestamp` as epoch milliseconds. */
export type ValidEvent = z.output<typeof eventSchema>;

/** The JSON Schema users can validate against before producing. */
export function eventJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(eventSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  // zod's superRefine (one of the ids must be non-empty) has no JSON Schema form; say it here.
  const nonEmpty = (field: string) => ({ required: [field], properties: { [field]: { type: 'string', minLength: 1 } } });
  return {
    ...schema,
    anyOf: [nonEmpty('anonymous_id'), nonEmpty('user_id')],
    $id: 'https://sessionizer.dev/schemas/event.schema.json',
    title: 'sessionizer event',
    description:
      'One event per Kafka message (UTF-8 JSON, at most 64 KiB). At least one of anonymous_id and ' +
      'user_id must be non-empty. Unknown top-level fields are ignored.',
  };
}
