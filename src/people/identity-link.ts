/**
 * Identity links and the identity map, without I/O (docs/sessions.md, "People").
 *
 * A link is a valid event with both a non-empty `anonymous_id` and a non-empty `user_id`; it
 * ties the two at its event time, within the event's site (two sites never share a link). The identity map holds, for each linked anonymous id, its
 * latest link: latest by `(timestamp, event_id)`, and among copies of one event id at one time
 * (which only a broken producer sends) the greatest `user_id`, so that the answer never
 * depends on arrival order.
 *
 * Strings are compared as UTF-8 bytes, as ClickHouse compares them: the `identity_map` table
 * takes the same maximum over the same tuples, so the worker's map and recompute's agree even
 * for ids outside the Basic Multilingual Plane.
 */
import type { SessionEvent } from '../events/session-event';
import { compareVisitorKeys, siteOfKey, visitorKeyOf } from '../events/visitor-key';

export interface Link {
  /** The site of the event: links, like everything else, are per site. */
  site: string;
  anonymousId: string;
  userId: string;
  /** Event time, epoch milliseconds. */
  ts: number;
  eventId: string;
}

/** One line of `recompute --identities`, and one row of `identity_map`. */
export interface IdentityEntry {
  site: string;
  anonymous_id: string;
  user_id: string;
  /** ISO-8601 UTC with milliseconds. */
  linked_at: string;
}

/** The event's link, or null when it lacks one of the two ids. */
export function linkOf(event: Pick<SessionEvent, 'userKey' | 'anonymousId' | 'userId' | 'ts' | 'eventId'>): Link | null {
  if (event.anonymousId === '' || event.userId === '') return null;
  return { site: siteOfKey(event.userKey), anonymousId: event.anonymousId, userId: event.userId, ts: event.ts, eventId: event.eventId };
}

/** Orders strings by their UTF-8 bytes (= by code points), as ClickHouse orders String. */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 order equals code point order unless a surrogate meets a code unit above it.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs === ys) return x - y;
    return xs ? 1 : -1; // a surrogate (U+10000 and above) sorts after any other BMP code unit
  }
  return a.length - b.length;
}

/** Link order: `(ts, event_id, user_id)`, the strings as UTF-8. */
export function compareLinks(a: Link, b: Link): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  return compareUtf8(a.eventId, b.eventId) || compareUtf8(a.userId, b.userId);
}

/** The later of two links (either may be null). */
export function laterLink(a: Link | null, b: Link | null): Link | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareLinks(a, b) >= 0 ? a : b;
}

export function identityEntryOf(link: Link): IdentityEntry {
  return { site: link.site, anonymous_id: link.anonymousId, user_id: link.userId, linked_at: new Date(link.ts).toISOString() };
}

/** The NDJSON line of an identity entry (fields in contract order). */
export function identityLineOf(link: Link): string {
  return JSON.stringify(identityEntryOf(link));
}

/**
 * The latest link of one anonymous id, as its events go by in any order. An event's link
 * belongs to its `anonymous_id`, which is also its user key: so a pass over one user key's
 * events sees every link of that anonymous id, and nothing else needs remembering.
 */
export class LatestLink {
  private best: Link | null = null;

  offer(event: SessionEvent): void {
    if (event.anonymousId === '' || event.userId === '') return;
    const best = this.best;
    if (best === null || event.ts > best.ts || (event.ts === best.ts && compareLinks(linkOf(event) as Link, best) > 0)) {
      this.best = linkOf(event);
    }
  }

  /** The latest link offered since the last take, and forgets it. */
  take(): Link | null {
    const best = this.best;
    this.best = null;
    return best;
  }
}

/**
 * The identity map of any collection of links (or events): one entry per (site, anonymous id),
 * sorted by site, then anonymous id, in the order the sessions output uses for user keys (UTF-16
 * code units). A reference for tests and for merging maps computed from parts of the input.
 */
export function identityMapOf(links: Iterable<Link | null>): Link[] {
  const latest = new Map<string, Link>();
  for (const link of links) {
    if (link === null) continue;
    const key = visitorKeyOf(link.site, link.anonymousId);
    latest.set(key, laterLink(latest.get(key) ?? null, link) as Link);
  }
  return [...latest.entries()].sort(([a], [b]) => compareVisitorKeys(a, b)).map(([, link]) => link);
}
