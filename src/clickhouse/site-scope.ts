/**
 * Which site a command reads or erases: the `--site` option of report, audience, forget and
 * dead-letters, validated once here, and what a command does when it is not given.
 *
 * Reports read one site when the data holds one (a single-site installation never needs the
 * option), and several sites side by side, grouped by site, when it holds more. Commands whose
 * answer only has a meaning within one site (an audience of people, an erasure) need a site to
 * be chosen when there are several.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { UsageError } from '../errors';
import { DEFAULT_SITE, isValidSite } from '../events/visitor-key';

/** The rule a site name follows, as said to a user. */
export const SITE_RULE = '1-64 characters of a-z, 0-9, ".", "_" and "-", starting with a letter or a digit';

/** `--site` as given (undefined when absent); a bad name is a usage error (exit 2). */
export function parseSiteOption(command: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !isValidSite(value)) {
    throw new UsageError(`${command}: --site '${String(value)}' is not a site name (${SITE_RULE})`);
  }
  return value;
}

/** What a query covers: one site, or every site grouped by site. */
export type SiteScope = { site: string; bySite: false } | { site?: undefined; bySite: true };

/** The sites with sessions in the roll-up, optionally within days (YYYY-MM-DD, inclusive). */
export async function sitesWithSessions(client: ClickHouseClient, database: string, days?: { from: string; to: string }): Promise<string[]> {
  const result = await client.query({
    query:
      `SELECT DISTINCT toString(site) AS site FROM ${database}.sessions_daily` +
      (days ? ' WHERE day >= {from:Date} AND day <= {to:Date}' : '') +
      ' ORDER BY site',
    query_params: days ?? {},
    format: 'JSONEachRow',
  });
  return (await result.json<{ site: string }>()).map((row) => row.site);
}

/** For a report: the site given; else the one site with data; else every site, by site. */
export function reportScope(given: string | undefined, sitesInData: readonly string[]): SiteScope {
  if (given !== undefined) return { site: given, bySite: false };
  if (sitesInData.length > 1) return { bySite: true };
  return { site: sitesInData[0] ?? DEFAULT_SITE, bySite: false };
}

/** For a command that needs exactly one site: the site given, else the only one with data. */
export function singleSite(command: string, given: string | undefined, sitesInData: readonly string[]): string {
  if (given !== undefined) return given;
  if (sitesInData.length > 1) {
    throw new UsageError(`${command}: the data holds several sites (${sitesInData.join(', ')}); choose one with --site`);
  }
  return sitesInData[0] ?? DEFAULT_SITE;
}
