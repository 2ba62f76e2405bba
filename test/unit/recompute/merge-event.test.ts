/**
 * The engine's hot path `mergeEvent(summary, event)` (used by recompute and the worker when an
 * event joins a session) must equal `mergeSummary(summary, summaryOf(event))` exactly.
 */
import fc from 'fast-check';
import type { SessionEvent } from '../../../src/events/session-event';
import { mergeEvent, mergeSummary, summaryOf } from '../../../src/engine/summary';

const value = fc.constantFrom('', '', 'a', 'b', 'Z');
const event: fc.Arbitrary<SessionEvent> = fc.record({
  userKey: fc.constant('k'),
  eventId: fc.constantFrom('e1', 'e2', 'e3', 'e4'),
  ts: fc.integer({ min: 0, max: 5 }),
  isView: fc.boolean(),
  keyEvent: fc.boolean(),
  channel: fc.constantFrom('web', 'app', 'server', 'store'),
  location: value,
  anonymousId: value,
  userId: value,
  source: value,
  medium: value,
  campaign: value,
  term: value,
  content: value,
  deviceType: value,
  os: value,
  browser: value,
  appVersion: value,
  country: value,
  region: value,
  city: value,
});

describe('mergeEvent', () => {
  it('equals mergeSummary(summary, summaryOf(event)) for any summary and event', () => {
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 6 }), event, (earlier, next) => {
        const build = () => {
          const summary = summaryOf(earlier[0] as SessionEvent);
          for (const e of earlier.slice(1)) mergeSummary(summary, summaryOf(e));
          return summary;
        };
        const expected = build();
        mergeSummary(expected, summaryOf(next));
        const actual = build();
        mergeEvent(actual, next);
        expect(actual).toStrictEqual(expected);
        expect(Object.keys(actual.firsts)).toEqual(Object.keys(expected.firsts));
      }),
      { numRuns: 5000 },
    );
  });
});
