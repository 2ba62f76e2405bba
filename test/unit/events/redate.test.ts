/** `produce --redate`: one whole-day shift that brings the newest event into the last 24 hours. */
import { DAY_MS, eventTimeOf, REDATE_LEAD_MS, redateEvent, redateShift } from '../../../src/events/redate';

it('shifts by whole seconds so the newest event lands about a minute before now, never in the future', () => {
  const latest = Date.parse('2024-05-01T23:50:00.123Z');
  const now = Date.parse('2026-12-01T15:00:00.000Z');
  const shift = redateShift(latest, now);
  expect(shift % 1000).toBe(0);
  expect(now - (latest + shift)).toBeGreaterThanOrEqual(REDATE_LEAD_MS);
  expect(now - (latest + shift)).toBeLessThan(REDATE_LEAD_MS + 1000);
});

it('keeps the form of each timestamp and leaves invalid ones alone', () => {
  const iso = { timestamp: '2024-05-01T10:00:00+02:00' };
  const epoch = { timestamp: Date.parse('2024-05-01T08:00:00Z') };
  const bad = { timestamp: 'yesterday' };
  expect(redateEvent(iso, 2 * DAY_MS)).toBe(true);
  expect(iso.timestamp).toBe('2024-05-03T08:00:00.000Z');
  expect(redateEvent(epoch, DAY_MS)).toBe(true);
  expect(epoch.timestamp).toBe(Date.parse('2024-05-02T08:00:00Z'));
  expect(redateEvent(bad, DAY_MS)).toBe(false);
  expect(bad.timestamp).toBe('yesterday');
  expect(eventTimeOf({ timestamp: 1.5 })).toBeNull();
});
