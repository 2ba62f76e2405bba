/**
 * People in integration tests: traffic where persons use several devices and share some, the
 * offline answer (`recompute` with its identity map, and the journey rules of
 * src/people/journey.ts), and the ClickHouse views read back in the same shape.
 */
import { Readable, Writable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { SessionRecord } from '../../src/engine/session-row';
import { generateTraffic, type RawEvent } from '../../src/loadgen/traffic';
import type { IdentityEntry } from '../../src/people/identity-link';
import { convertingSessionIds, identityLookup, personsOf, personSessionsOf, type PersonSession, type PersonSummary } from '../../src/people/journey';
import { recompute } from '../../src/recompute/recompute';
import { SESSION_FIELDS } from '../../src/engine/session-row';

export const PEOPLE_START = Date.parse('2024-05-01T00:00:00Z');
const SPAN = 12 * 3_600_000;

/**
 * loadgen traffic of `visitors` devices (web, app, server, store), whose user ids are remapped
 * so that `persons` people share them: each person has several devices, and every seventh
 * device is shared, passing to the next person halfway through the day (its latest user).
 */
export function peopleTraffic(visitors: number, persons: number, seed: number): RawEvent[] {
  const prefix = `p${seed}-`;
  const events = [
    ...generateTraffic({ users: visitors, startMs: PEOPLE_START, spanMs: SPAN, duplicateRate: 0.02, disorderMs: 120_000, seed, idPrefix: prefix }),
  ];
  const userPattern = new RegExp(`^${prefix}user-(\\d+)$`);
  for (const event of events) {
    const match = typeof event.user_id === 'string' ? userPattern.exec(event.user_id) : null;
    if (!match) continue;
    const device = Number(match[1]);
    const ts = typeof event.timestamp === 'number' ? event.timestamp : Date.parse(String(event.timestamp));
    const shared = device % 7 === 0 && ts >= PEOPLE_START + SPAN / 2;
    event.user_id = `${prefix}person-${(device + (shared ? 1 : 0)) % persons}`;
  }
  return events;
}

export interface OfflinePeople {
  sessions: SessionRecord[];
  identities: IdentityEntry[];
  personSessions: PersonSession[];
  persons: PersonSummary[];
}

function collector(into: string[]): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      into.push(...lines.filter((l) => l !== ''));
      done();
    },
  });
}

/** recompute with `--identities` over the events, and the journeys and persons made from them. */
export async function offlinePeople(events: readonly RawEvent[], timeoutMinutes = 30): Promise<OfflinePeople> {
  const sessionLines: string[] = [];
  const identityLines: string[] = [];
  await recompute(Readable.from(events.map((e) => JSON.stringify(e) + '\n')), collector(sessionLines), {
    timeoutMs: timeoutMinutes * 60_000,
    identities: collector(identityLines),
  });
  const sessions = sessionLines.map((l) => JSON.parse(l) as SessionRecord);
  const identities = identityLines.map((l) => JSON.parse(l) as IdentityEntry);
  const personSessions = personSessionsOf(sessions, identityLookup(identities));
  const keyEvents = events
    .filter((e) => e.key_event === true)
    .map((e) => ({ userKey: String(e.anonymous_id || e.user_id), ts: typeof e.timestamp === 'number' ? e.timestamp : Date.parse(String(e.timestamp)) }));
  const persons = personsOf(personSessions, convertingSessionIds(sessions, keyEvents));
  return { sessions, identities, personSessions, persons };
}

const iso = (column: string) => `concat(replaceOne(toString(${column}), ' ', 'T'), 'Z')`;

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const result = await client.query({ query, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
  return result.json<T>();
}

export function readIdentityMap(client: ClickHouseClient, database: string): Promise<IdentityEntry[]> {
  return rows(client, `SELECT site, anonymous_id, user_id, ${iso('linked_at')} AS linked_at FROM ${database}.identity_map ORDER BY site, anonymous_id`);
}

/** person_sessions in `personSessionsOf`'s field order, by person and journey order. */
export function readPersonSessions(client: ClickHouseClient, database: string, where = '1'): Promise<PersonSession[]> {
  const columns = SESSION_FIELDS.map((f) => (f === 'started_at' || f === 'ended_at' ? `${iso(f)} AS ${f}` : f));
  return rows(
    client,
    `SELECT ${columns.join(', ')}, person_id, person_session_number, previous_person_session_id ` +
      `FROM ${database}.person_sessions WHERE ${where} ORDER BY person_id, person_session_number`,
  );
}

export function readPersons(client: ClickHouseClient, database: string): Promise<PersonSummary[]> {
  return rows(
    client,
    `SELECT site, person_id, ${iso('first_seen')} AS first_seen, ${iso('last_seen')} AS last_seen, sessions, engaged_sessions, converting_sessions, ` +
      'first_source, first_medium, first_campaign, last_source, last_medium, last_campaign, channels, device_types, countries, user_keys ' +
      `FROM ${database}.persons ORDER BY site, person_id`,
  );
}

/** `personSessionsOf`'s output in the order readPersonSessions uses (person id as bytes, then number). */
export function inReadOrder(sessions: readonly PersonSession[]): PersonSession[] {
  const bytes = (s: string) => Buffer.from(s, 'utf8');
  return [...sessions].sort((a, b) => Buffer.compare(bytes(a.person_id), bytes(b.person_id)) || a.person_session_number - b.person_session_number);
}
