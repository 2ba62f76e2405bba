/**
 * People from sessions and an identity map, without I/O: the rules the ClickHouse views
 * `person_sessions` and `persons` (schemas/clickhouse/013_people.sql) apply, in TypeScript, for
 * offline use and as the reference the tests hold those views to.
 *
 * - person_id of a session: its own user_id when non-empty; else the identity map's user_id
 *   for its anonymous_id; else its user_key.
 * - A person's journey: their sessions ordered by (started_at, session_id), numbered from 1,
 *   each with the id of the one before ("" for the first).
 * - All of it per site: a person is (site, person_id), and the identity map is looked up in the
 *   session's own site, so equal ids in two sites are two people.
 */
import { visitorKeyOfRow, type SessionRecord } from '../engine/session-row';
import { visitorKeyOf } from '../events/visitor-key';
import { compareUtf8, type IdentityEntry } from './identity-link';

export interface PersonSession extends SessionRecord {
  person_id: string;
  person_session_number: number;
  previous_person_session_id: string;
}

export interface PersonSummary {
  site: string;
  person_id: string;
  first_seen: string;
  last_seen: string;
  sessions: number;
  engaged_sessions: number;
  converting_sessions: number;
  first_source: string;
  first_medium: string;
  first_campaign: string;
  last_source: string;
  last_medium: string;
  last_campaign: string;
  channels: string[];
  device_types: string[];
  countries: string[];
  /** Distinct user keys (devices and browsers; user-id-only events count as one more). */
  user_keys: number;
}

/** (site, anonymous_id), as a visitor key (src/events/visitor-key.ts) -> user_id of its latest link. */
export function identityLookup(entries: Iterable<IdentityEntry>): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of entries) map.set(visitorKeyOf(entry.site, entry.anonymous_id), entry.user_id);
  return map;
}

/** The session's person within its site (the site is not part of the id; it is beside it). */
export function personIdOf(session: Pick<SessionRecord, 'site' | 'user_id' | 'anonymous_id' | 'user_key'>, identities: ReadonlyMap<string, string>): string {
  if (session.user_id !== '') return session.user_id;
  const linked = session.anonymous_id === '' ? undefined : identities.get(visitorKeyOf(session.site, session.anonymous_id));
  return linked || session.user_key;
}

/** Journey order: `(started_at, session_id)`; started_at is ISO-8601 UTC with ms, so text order is time order. */
function journeyOrder(a: SessionRecord, b: SessionRecord): number {
  if (a.started_at !== b.started_at) return a.started_at < b.started_at ? -1 : 1;
  return a.session_id < b.session_id ? -1 : a.session_id > b.session_id ? 1 : 0;
}

/** Every session with its person and place in the person's journey, grouped by person in journey order. */
export function personSessionsOf(sessions: readonly SessionRecord[], identities: ReadonlyMap<string, string>): PersonSession[] {
  // Keyed by (site, person_id) as a visitor key: ids hold no U+0000, so the pair is unambiguous.
  const byPerson = new Map<string, { person: string; list: SessionRecord[] }>();
  for (const session of sessions) {
    const person = personIdOf(session, identities);
    const key = visitorKeyOf(session.site, person);
    const entry = byPerson.get(key);
    if (entry) entry.list.push(session);
    else byPerson.set(key, { person, list: [session] });
  }
  const out: PersonSession[] = [];
  for (const { person, list } of byPerson.values()) {
    list.sort(journeyOrder);
    list.forEach((session, i) => {
      out.push({ ...session, person_id: person, person_session_number: i + 1, previous_person_session_id: i === 0 ? '' : (list[i - 1] as SessionRecord).session_id });
    });
  }
  return out;
}

/**
 * Session ids that hold a key event: a key event of the session's site and user key between its
 * started_at and ended_at (inclusive). `keyEvents` are (visitor key, epoch ms) pairs.
 */
export function convertingSessionIds(sessions: readonly SessionRecord[], keyEvents: Iterable<{ userKey: string; ts: number }>): Set<string> {
  const times = new Map<string, number[]>();
  for (const { userKey, ts } of keyEvents) {
    const list = times.get(userKey);
    if (list) list.push(ts);
    else times.set(userKey, [ts]);
  }
  const ids = new Set<string>();
  for (const session of sessions) {
    const list = times.get(visitorKeyOfRow(session));
    if (!list) continue;
    const start = Date.parse(session.started_at);
    const end = Date.parse(session.ended_at);
    if (list.some((ts) => ts >= start && ts <= end)) ids.add(session.session_id);
  }
  return ids;
}

const sortedSet = (values: Iterable<string>): string[] => [...new Set(values)].filter((v) => v !== '').sort(compareUtf8);

/**
 * One summary per person (site and person_id) from `personSessionsOf`'s output (journey order
 * within each person), sorted by site, then person_id.
 */
export function personsOf(personSessions: readonly PersonSession[], converting: ReadonlySet<string>): PersonSummary[] {
  const byPerson = new Map<string, PersonSession[]>();
  for (const s of personSessions) {
    const key = visitorKeyOf(s.site, s.person_id);
    const list = byPerson.get(key);
    if (list) list.push(s);
    else byPerson.set(key, [s]);
  }
  const out: PersonSummary[] = [];
  for (const list of byPerson.values()) {
    list.sort(journeyOrder);
    const first = list[0] as PersonSession;
    const last = list[list.length - 1] as PersonSession;
    out.push({
      site: first.site,
      person_id: first.person_id,
      first_seen: first.started_at,
      last_seen: list.reduce((max, s) => (s.ended_at > max ? s.ended_at : max), first.ended_at),
      sessions: list.length,
      engaged_sessions: list.filter((s) => s.is_engaged === 1).length,
      converting_sessions: list.filter((s) => converting.has(s.session_id)).length,
      first_source: first.source,
      first_medium: first.medium,
      first_campaign: first.campaign,
      last_source: last.source,
      last_medium: last.medium,
      last_campaign: last.campaign,
      channels: sortedSet(list.map((s) => s.channel)),
      device_types: sortedSet(list.map((s) => s.device_type)),
      countries: sortedSet(list.map((s) => s.country)),
      user_keys: new Set(list.map((s) => s.user_key)).size,
    });
  }
  // Sites are ASCII: their UTF-16 order is their byte order.
  return out.sort((a, b) => (a.site !== b.site ? (a.site < b.site ? -1 : 1) : compareUtf8(a.person_id, b.person_id)));
}
