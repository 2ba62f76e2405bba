/**
 * `sessionizer report --people`: person-level numbers per day (UTC, of the session start) and
 * optionally per group, from the `session_persons` and `persons` views:
 *   people               distinct people with a session that day (in the group)
 *   new_people           of those, people whose first session ever started that day
 *   returning_people     people − new_people
 *   sessions             sessions that day (in the group)
 *   sessions_per_person  sessions / people
 *   cross_device_people  of the day's people, those whose journey spans two or more user keys
 *                        (devices, browsers, or a user id used alone, as in a store)
 * People are distinct per row: they do not add up across groups or days.
 *
 * Groups: any session dimension of `report --by` (the day's session's value; a person with
 * sessions in two groups counts in both), or a person dimension: first-touch source, medium or
 * campaign (the person's first session ever).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { csvField, percent } from '../clickhouse/report-format';
import { REPORT_DIMENSIONS } from '../clickhouse/report-queries';

export const PERSON_DIMENSIONS = ['first_source', 'first_medium', 'first_campaign'] as const;
export const PEOPLE_REPORT_DIMENSIONS = [...REPORT_DIMENSIONS, ...PERSON_DIMENSIONS] as const;
export type PeopleReportDimension = (typeof PEOPLE_REPORT_DIMENSIONS)[number];

export interface PeopleReportQuery {
  from: string;
  to: string;
  by?: PeopleReportDimension;
  /** Only this site's people; absent: every site. */
  site?: string;
  /** One row per site too (a person belongs to one site). */
  bySite?: boolean;
}

export interface PeopleReportRow {
  day: string;
  /** The site of the row, when the report is by site. */
  site?: string;
  group: string;
  people: number;
  newPeople: number;
  returningPeople: number;
  sessions: number;
  sessionsPerPerson: number;
  crossDevicePeople: number;
  crossDeviceShare: number;
}

/** The statement: `by` is one of a closed list (checked here too), the days are parameters. */
export function peopleReportSql(database: string, by?: PeopleReportDimension, scope: { site?: string; bySite?: boolean } = {}): string {
  if (by !== undefined && !(PEOPLE_REPORT_DIMENSIONS as readonly string[]).includes(by)) throw new Error(`unknown dimension ${by}`);
  const group = by === undefined ? "''" : (PERSON_DIMENSIONS as readonly string[]).includes(by) ? `p.${by}` : `toString(s.${by})`;
  // A person is a (site, person_id): the join and the counts are within a site.
  const site = scope.site !== undefined;
  return `
    SELECT toDate(s.started_at) AS day, ${group} AS grp${scope.bySite ? ', toString(s.site) AS st' : ''},
           uniqExact(s.site, s.person_id) AS people,
           uniqExactIf((s.site, s.person_id), toDate(p.first_seen) = toDate(s.started_at)) AS new_people,
           count() AS sessions,
           uniqExactIf((s.site, s.person_id), p.user_keys > 1) AS cross_device_people
    FROM ${database}.session_persons AS s
    INNER JOIN
    (
        SELECT site, person_id, first_seen, user_keys, first_source, first_medium, first_campaign FROM ${database}.persons${site ? ' WHERE site = {site:String}' : ''}
    ) AS p ON s.site = p.site AND s.person_id = p.person_id
    WHERE toDate(s.started_at) >= {from:Date} AND toDate(s.started_at) <= {to:Date}${site ? ' AND s.site = {site:String}' : ''}
    GROUP BY day, grp${scope.bySite ? ', st' : ''}
    ORDER BY day, ${scope.bySite ? 'st, ' : ''}people DESC, grp`;
}

interface Raw {
  day: string;
  grp: string;
  st?: string;
  people: string | number;
  new_people: string | number;
  sessions: string | number;
  cross_device_people: string | number;
}

export function peopleRowOf(raw: Raw): PeopleReportRow {
  const people = Number(raw.people);
  const newPeople = Number(raw.new_people);
  const sessions = Number(raw.sessions);
  const crossDevicePeople = Number(raw.cross_device_people);
  return {
    day: raw.day,
    ...(raw.st !== undefined ? { site: raw.st } : {}),
    group: raw.grp,
    people,
    newPeople,
    returningPeople: people - newPeople,
    sessions,
    sessionsPerPerson: people > 0 ? sessions / people : 0,
    crossDevicePeople,
    crossDeviceShare: people > 0 ? crossDevicePeople / people : 0,
  };
}

export async function peopleReport(client: ClickHouseClient, database: string, query: PeopleReportQuery): Promise<PeopleReportRow[]> {
  const result = await client.query({
    query: peopleReportSql(database, query.by, query),
    query_params: { from: query.from, to: query.to, ...(query.site !== undefined ? { site: query.site } : {}) },
    format: 'JSONEachRow',
  });
  return (await result.json<Raw>()).map(peopleRowOf);
}

export function peopleReportRecords(rows: readonly PeopleReportRow[], by?: PeopleReportDimension): Record<string, string | number>[] {
  return rows.map((r) => ({
    day: r.day,
    ...(r.site !== undefined ? { site: r.site } : {}),
    ...(by ? { [by]: r.group } : {}),
    people: r.people,
    new_people: r.newPeople,
    returning_people: r.returningPeople,
    sessions: r.sessions,
    sessions_per_person: Math.round(r.sessionsPerPerson * 1000) / 1000,
    cross_device_people: r.crossDevicePeople,
    cross_device_share: Math.round(r.crossDeviceShare * 10000) / 10000,
  }));
}

export function formatPeopleReport(rows: readonly PeopleReportRow[], format: 'table' | 'json' | 'csv', by?: PeopleReportDimension): string {
  const records = peopleReportRecords(rows, by);
  if (format === 'json') return records.length === 0 ? '[]\n' : `[\n${records.map((r) => `  ${JSON.stringify(r)}`).join(',\n')}\n]\n`;
  const bySite = rows.some((r) => r.site !== undefined);
  const header = ['day', ...(bySite ? ['site'] : []), ...(by ? [by] : []), 'people', 'new_people', 'returning_people', 'sessions', 'sessions_per_person', 'cross_device_people', 'cross_device_share'];
  if (format === 'csv') return `${[header.join(','), ...records.map((r) => header.map((h) => csvField(r[h] ?? '')).join(','))].join('\n')}\n`;
  const titles = ['day', ...(bySite ? ['site'] : []), ...(by ? [by] : []), 'people', 'new', 'returning', 'sessions', 'sessions/person', 'cross-device'];
  // A control character in a group value would break the table's lines.
  // eslint-disable-next-line no-control-regex -- exactly the characters replaced
  const printable = (v: string) => v.replace(/[\u0000-\u001f\u007f]/g, '?');
  const cells = rows.map((r) => [
    r.day,
    ...(bySite ? [r.site ?? ''] : []),
    ...(by ? [r.group === '' ? '(empty)' : printable(r.group)] : []),
    String(r.people),
    String(r.newPeople),
    String(r.returningPeople),
    String(r.sessions),
    r.sessionsPerPerson.toFixed(2),
    percent(r.crossDeviceShare),
  ]);
  const left = 1 + (bySite ? 1 : 0) + (by ? 1 : 0);
  const widths = titles.map((t, i) => Math.max(t.length, ...cells.map((c) => (c[i] as string).length)));
  const render = (values: string[]) => values.map((v, i) => (i < left ? v.padEnd(widths[i] as number) : v.padStart(widths[i] as number))).join('  ').trimEnd();
  return `${[render(titles), render(widths.map((w) => '-'.repeat(w))), ...cells.map(render)].join('\n')}\n`;
}
