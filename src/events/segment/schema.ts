/**
 * The parts of a Segment Spec message (https://segment.com/docs/connections/spec/) that the
 * mapping reads, as a zod schema: the definition of an acceptable Segment message. Fields the
 * mapping does not read are ignored whatever they hold (`traits`, `groupId`, `integrations`,
 * the rest of `context`), as Segment's own API ignores what a destination does not use.
 *
 * Sizes follow our event rules: `messageId` becomes `event_id` (1–128 characters), the ids
 * become `anonymous_id`/`user_id` (at most 128), `event`/`name` become `name` (at most 256),
 * and `properties` may nest at most `MAX_PROPERTIES_DEPTH` levels. A value of a field we read
 * that has the wrong type is an error naming the field, never silently dropped; `null` means
 * absent, as in our own format.
 */
import { z } from 'zod';
import { MAX_PROPERTIES_DEPTH, nestingDepth } from '../event-schema';
import { parseIsoTimestamp } from '../timestamp';
import { SITE_PATTERN } from '../visitor-key';

export const SEGMENT_TYPES = ['track', 'page', 'screen', 'identify', 'group', 'alias'] as const;
export type SegmentType = (typeof SEGMENT_TYPES)[number];

const text = () => z.string().nullish();
const ID = z.string().max(128);
const NAME = z.string().max(256);

/**
 * A point in time as Segment sends it (ISO-8601 with a zone), or epoch milliseconds as our own
 * format allows: epoch milliseconds out. Any year is accepted here (a device clock set to 1970
 * still corrects correctly); the event time the mapping computes must be within 2000–2099.
 */
export const segmentTime = z
  .union([z.string(), z.number().int('expected whole epoch milliseconds')], {
    error: 'expected an ISO-8601 string with a zone or epoch milliseconds',
  })
  .transform((value, ctx): number => {
    if (typeof value === 'number') return value;
    const ms = parseIsoTimestamp(value);
    if (typeof ms === 'string') {
      ctx.addIssue({ code: 'custom', message: ms });
      return z.NEVER;
    }
    return ms;
  });

/** A version may be sent as a number by some SDKs (`"app": {"version": 2}`): read it as text. */
const version = z
  .union([z.string(), z.number()], { error: 'expected a string' })
  .transform((v) => String(v))
  .nullish();

const contextSchema = z.object({
  // Our extension: the site the message belongs to (docs/segment.md); checked here so that an
  // error names the field the sender wrote.
  site: z.string().regex(SITE_PATTERN, 'expected 1-64 characters of a-z 0-9 . _ -, starting with a letter or a digit').nullish(),
  channel: text(),
  userAgent: text(),
  page: z.object({ url: text(), path: text(), title: text(), referrer: text() }).nullish(),
  campaign: z.object({ source: text(), medium: text(), name: text(), term: text(), content: text() }).nullish(),
  device: z.object({ type: text() }).nullish(),
  os: z.object({ name: text() }).nullish(),
  app: z.object({ version }).nullish(),
  location: z.object({ country: text(), region: text(), city: text() }).nullish(),
});

export const segmentMessageSchema = z
  .object({
    type: z.enum(SEGMENT_TYPES, { error: `expected one of ${SEGMENT_TYPES.join(', ')}` }),
    messageId: z.string().min(1).max(128),
    timestamp: segmentTime.nullish(),
    originalTimestamp: segmentTime.nullish(),
    sentAt: segmentTime.nullish(),
    receivedAt: segmentTime.nullish(),
    anonymousId: ID.nullish(),
    userId: ID.nullish(),
    // Read only by some call types, so checked (below) only for those.
    previousId: text(),
    event: text(),
    name: text(),
    channel: text(),
    context: contextSchema.nullish(),
    properties: z
      .record(z.string(), z.unknown())
      .superRefine((value, ctx) => {
        if (nestingDepth(value) > MAX_PROPERTIES_DEPTH) {
          ctx.addIssue({ code: 'custom', message: `nested deeper than ${MAX_PROPERTIES_DEPTH} levels` });
        }
      })
      .nullish(),
  })
  .superRefine((message, ctx) => {
    // Segment's API requires the event name of a track call; without it there is nothing to count.
    if (message.type === 'track' && !message.event) {
      ctx.addIssue({ code: 'custom', path: ['event'], message: 'is required for a track call' });
    }
    // Lengths counted as zod counts them everywhere else (code points), with zod itself.
    const check = (field: 'event' | 'name' | 'previousId', schema: z.ZodString) => {
      const value = message[field];
      if (!value) return;
      const result = schema.safeParse(value);
      if (!result.success) ctx.addIssue({ code: 'custom', path: [field], message: (result.error.issues[0] as z.core.$ZodIssue).message });
    };
    if (message.type === 'track') check('event', NAME);
    if (message.type === 'page' || message.type === 'screen') check('name', NAME);
    if (message.type === 'alias') check('previousId', ID);
    const previous = message.type === 'alias' ? message.previousId : null;
    if (!message.anonymousId && !message.userId && !previous) {
      ctx.addIssue({
        code: 'custom',
        path: ['anonymousId'],
        message:
          message.type === 'alias'
            ? 'at least one of anonymousId, userId and previousId must be a non-empty string'
            : 'at least one of anonymousId and userId must be a non-empty string',
      });
    }
  });

export type SegmentMessage = z.output<typeof segmentMessageSchema>;
