/**
 * The cookieless id and its day arithmetic (pure); the Redis side is in
 * test/integration/collect-cookieless.int.test.ts.
 */
import { createHmac } from 'node:crypto';
import { continuesVisit, cookielessId, dayStartMs, needsLastSeenMarker, previousUtcDay, saltExpiresAtMs, utcDay } from '../../../src/collect/cookieless-id';

const SALT = Buffer.alloc(32, 7);
const T = 30 * 60_000;

describe('cookielessId', () => {
  it('is "c-" + the first 32 hex of HMAC-SHA256(salt, site|ip|ua)', () => {
    const expected = createHmac('sha256', SALT).update('site-1|203.0.113.9|UA/1').digest('hex').slice(0, 32);
    expect(cookielessId(SALT, 'site-1', '203.0.113.9', 'UA/1')).toBe(`c-${expected}`);
    expect(cookielessId(SALT, 'site-1', '203.0.113.9', 'UA/1')).toMatch(/^c-[0-9a-f]{32}$/);
  });

  it('differs by site, IP, User-Agent and salt', () => {
    const base = cookielessId(SALT, 's', '1.2.3.4', 'ua');
    expect(cookielessId(SALT, 's2', '1.2.3.4', 'ua')).not.toBe(base);
    expect(cookielessId(SALT, 's', '1.2.3.5', 'ua')).not.toBe(base);
    expect(cookielessId(SALT, 's', '1.2.3.4', 'ua2')).not.toBe(base);
    expect(cookielessId(Buffer.alloc(32, 8), 's', '1.2.3.4', 'ua')).not.toBe(base);
  });
});

describe('days', () => {
  const t = Date.parse('2026-03-01T23:50:00.000Z');
  it('names UTC days and their starts', () => {
    expect(utcDay(t)).toBe('2026-03-01');
    expect(previousUtcDay(t)).toBe('2026-02-28');
    expect(dayStartMs(t)).toBe(Date.parse('2026-03-01T00:00:00.000Z'));
  });

  it('deletes a salt at the end of the next day', () => {
    expect(saltExpiresAtMs('2026-03-01')).toBe(Date.parse('2026-03-03T00:00:00.000Z'));
  });

  it('keeps a last-seen marker only in the last T of a day, or while yesterday’s id goes on', () => {
    expect(needsLastSeenMarker(t, T, false)).toBe(true);
    expect(needsLastSeenMarker(Date.parse('2026-03-01T23:29:59.000Z'), T, false)).toBe(false);
    expect(needsLastSeenMarker(Date.parse('2026-03-02T08:00:00.000Z'), T, true)).toBe(true);
  });

  it('continues a visit only when it was seen less than T ago', () => {
    expect(continuesVisit(null, t, T)).toBe(false);
    expect(continuesVisit(t - T + 1, t, T)).toBe(true);
    expect(continuesVisit(t - T, t, T)).toBe(false);
  });
});
