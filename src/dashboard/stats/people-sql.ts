/**
 * The query of the person metrics (PERSON_METRICS in definitions.ts): identified people and the
 * cross-device share, over the site's sessions of the range that pass the query's filters.
 *
 *   SELECT <people and their sessions, in total and cross-device>
 *   FROM (SELECT person, sessions, device types                       -- one row per person
 *         FROM (SELECT person, device type, sum(sign)                   -- net sessions per
 *               FROM sessions LEFT JOIN <the site's identity links>     -- person and device type
 *               WHERE site = … AND started_at in range AND … AND person is known
 *               GROUP BY person, device type)
 *         GROUP BY person)
 *
 * Like every other figure it reads the site's part of `sessions` without FINAL: a cancelled
 * state and its cancel row share their person and device type, so their signs add up to nothing
 * in the innermost group, and a person or a device type counts where its net sessions are above
 * 0. The identity links are read per site with max() over their parts (what FINAL would merge).
 */
import { PERSON_METRICS } from './definitions';
import { namedEventDimensions, sourceSql, whereClause, type BuildContext, type BuiltQuery } from './query-sql';
import type { StatsQuery } from './query-types';

/** The query is made of person metrics only (the parser allows no mix and no dimensions). */
export function isPeopleQuery(query: Pick<StatsQuery, 'metrics'>): boolean {
  return query.metrics.length > 0 && query.metrics.every((m) => PERSON_METRICS[m] !== undefined);
}

export function buildPeopleSql(query: StatsQuery, context: BuildContext, options: { totalRows?: boolean } = {}): BuiltQuery {
  const params: Record<string, unknown> = {};
  const where = whereClause(context, query.filters, params);
  const sessions = sourceSql(context.database, false, namedEventDimensions(query));
  // The session's person as the session_persons view has it (docs/queries.md), but only when it
  // is a user id: a device that never logged in is not an identified person.
  const links = `LEFT JOIN (
  SELECT anonymous_id AS link_anonymous_id, tupleElement(max(latest), 3) AS linked_user_id
  FROM ${context.database}.identity_links
  WHERE site = {site:String}
  GROUP BY anonymous_id
) AS links ON anonymous_id = link_anonymous_id`;
  const metricColumns = query.metrics.map((_, i) => `m${i}`);
  const select = [
    'countIf(n_visits > 0) AS identified_people_',
    'sumIf(n_visits, n_visits > 0) AS identified_visits_',
    'countIf(n_visits > 0 AND device_types >= 2) AS cross_device_people_',
    'sumIf(n_visits, n_visits > 0 AND device_types >= 2) AS cross_device_visits_',
    ...query.metrics.map((m, i) => `${(PERSON_METRICS[m] as { sql: string }).sql} AS m${i}`),
  ];
  if (options.totalRows) select.push('count() OVER () AS total_rows_');
  const sql = `SELECT ${select.join(', ')}
FROM (
  SELECT person, sum(n_device_visits) AS n_visits, countIf(device != '' AND n_device_visits > 0) AS device_types
  FROM (
    SELECT if(user_id != '', user_id, linked_user_id) AS person, toString(device_type) AS device, sum(sign) AS n_device_visits
    FROM ${sessions}
    ${links}
    WHERE ${where}
      AND person != ''
    GROUP BY person, device
  )
  GROUP BY person
)`;
  return { sql, params, dimensionColumns: [], metricColumns };
}
