/**
 * The cookieless visitor id, pure: no clock reads, no I/O. A visitor that sends no id of its own
 * is recognised by a keyed hash of the site, its IP address and its User-Agent, with a key (the
 * salt) made for one UTC day. Nothing is stored on the device; the id changes every day, and once
 * the day's salt is deleted nobody, us included, can link the id back to an address.
 */
import { createHmac } from 'node:crypto';

const DAY_MS = 86_400_000;

/** `"c-"` + the first 32 hex characters of HMAC-SHA256(salt, site + "|" + ip + "|" + userAgent). */
export function cookielessId(salt: Buffer, siteId: string, ip: string, userAgent: string): string {
  const digest = createHmac('sha256', salt).update(`${siteId}|${ip}|${userAgent}`, 'utf8').digest('hex');
  return `c-${digest.slice(0, 32)}`;
}

/** The UTC day of an instant as `YYYY-MM-DD`. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Start of the UTC day of an instant, in epoch ms. */
export function dayStartMs(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/** The UTC day before `ms`'s day, as `YYYY-MM-DD`. */
export function previousUtcDay(ms: number): string {
  return utcDay(dayStartMs(ms) - DAY_MS);
}

/**
 * When a day's salt is deleted: at the end of the next day. Yesterday's salt is still needed
 * after midnight (a visit that spans it keeps its id), never later.
 */
export function saltExpiresAtMs(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`) + 2 * DAY_MS;
}

/**
 * Whether an event at `nowMs` may still continue yesterday's visit: only when the visitor's
 * yesterday-id was seen less than `timeoutMs` ago (a gap ≥ T starts a new session anyway).
 */
export function continuesVisit(lastSeenMs: number | null, nowMs: number, timeoutMs: number): boolean {
  return lastSeenMs !== null && nowMs - lastSeenMs < timeoutMs && nowMs >= lastSeenMs - timeoutMs;
}

/**
 * Whether the "last seen" marker of an id must be written: in the last T of a UTC day (a visit
 * may cross midnight), or when the id is yesterday's (the crossing visit goes on). At other
 * times no marker is kept at all.
 */
export function needsLastSeenMarker(nowMs: number, timeoutMs: number, usedYesterday: boolean): boolean {
  return usedYesterday || dayStartMs(nowMs) + DAY_MS - nowMs <= timeoutMs;
}
