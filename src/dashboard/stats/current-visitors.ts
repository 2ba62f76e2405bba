/**
 * Current visitors: distinct user keys of the site with an event in the last 5 minutes, from
 * `events` (the sessions table holds a session's start and end records, not its activity in
 * between). Only the current month's partitions can hold such events; the time condition is
 * on the stored `timestamp` column.
 */
import type { StatsDeps } from './query';
import { siteOf } from './query';

export const CURRENT_WINDOW_MINUTES = 5;

export async function currentVisitors(deps: StatsDeps, site: string): Promise<number> {
  siteOf(deps.sites, site);
  const now = (deps.now ?? Date.now)();
  const result = await deps.clickhouse.query({
    query: `SELECT uniqExact(user_key) AS visitors
FROM ${deps.database}.events
WHERE site = {site:String}
  AND timestamp >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
  AND timestamp <= fromUnixTimestamp64Milli({until:Int64}, 'UTC')`,
    query_params: { site, since: now - CURRENT_WINDOW_MINUTES * 60_000, until: now },
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{ visitors: string | number }>();
  return Number(row?.visitors ?? 0);
}
