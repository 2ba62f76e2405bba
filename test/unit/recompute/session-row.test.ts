/**
 * `sessionRowOf` (the engine's row, built as one literal for speed) must be exactly
 * `{ ...sessionRecordOf(...), is_open, version }`: same values and the same key order, which
 * is the order every output (recompute's NDJSON, ClickHouse rows, state) serialises.
 */
import { SESSION_FIELDS, sessionRecordOf, sessionRowOf, toSessionRecord } from '../../../src/engine/session-row';
import { mergeSummary, summaryOf } from '../../../src/engine/summary';
import type { SessionEvent } from '../../../src/events/session-event';

const event = (over: Partial<SessionEvent>): SessionEvent => ({
  userKey: 'k', eventId: 'e', ts: Date.UTC(2024, 4, 1), isView: true, keyEvent: false, channel: 'app', location: '/a', anonymousId: 'k',
  userId: 'u', source: 's', medium: 'm', campaign: 'c', term: 't', content: 'x', deviceType: 'mobile', os: 'iOS', browser: '',
  appVersion: '1', country: 'DE', region: 'BY', city: 'München', ...over,
});

describe('sessionRowOf', () => {
  it('is the record followed by is_open and version, key for key', () => {
    const summary = summaryOf(event({}));
    mergeSummary(summary, summaryOf(event({ eventId: 'f', ts: Date.UTC(2024, 4, 1, 0, 5), location: '/b', userId: '' })));
    for (const [isOpen, version] of [[0, 1], [1, 7]] as const) {
      const row = sessionRowOf('k', summary, 3, 'prev', isOpen, version);
      const expected = { ...sessionRecordOf('k', summary, 3, 'prev'), is_open: isOpen, version };
      expect(row).toStrictEqual(expected);
      expect(Object.keys(row)).toEqual([...SESSION_FIELDS, 'is_open', 'version']);
      expect(JSON.stringify(toSessionRecord(row))).toBe(JSON.stringify(sessionRecordOf('k', summary, 3, 'prev')));
      expect(Object.keys(toSessionRecord(row))).toEqual(SESSION_FIELDS);
      expect(toSessionRecord({ ...row, sign: -1 } as typeof row)).toStrictEqual(sessionRecordOf('k', summary, 3, 'prev'));
    }
  });
});
