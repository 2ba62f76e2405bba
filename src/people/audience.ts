/**
 * `sessionizer audience`: which people match a set of filters, as a ClickHouse query over the
 * `persons` view. Pure: validates the filters (zod) and builds the statement.
 *
 * Safety: the statement is made only of fixed text chosen by which filters are present; every
 * value a user typed reaches ClickHouse as a typed query parameter (`{name:Type}`), never as
 * text of the statement. The one name a user gives (`--into-table`) must be a plain identifier
 * and is also passed as an `Identifier` parameter.
 */
import { z } from 'zod';
import { SITE_RULE } from '../clickhouse/site-scope';
import { parseIsoTimestamp } from '../events/timestamp';
import { isValidSite } from '../events/visitor-key';

export const AUDIENCE_FORMATS = ['ndjson', 'csv'] as const;
export const AUDIENCE_TOUCHES = ['first', 'last', 'any'] as const;
export const CHANNELS = ['web', 'app', 'server', 'store'] as const;

const text = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(256, `${what} is longer than 256 characters`)
    // eslint-disable-next-line no-control-regex -- control characters are never a real value
    .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), `${what} holds control characters`);

/** `YYYY-MM-DD` (midnight UTC) or an ISO-8601 date-time with a zone, to epoch ms. */
const since = z.string().transform((value, ctx) => {
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  const ms = parseIsoTimestamp(iso);
  if (typeof ms === 'string') {
    ctx.addIssue({ code: 'custom', message: `--since: expected YYYY-MM-DD or an ISO-8601 date-time with a zone (${ms})` });
    return z.NEVER;
  }
  return ms;
});

export const audienceFilterSchema = z
  .object({
    /** The site whose people; the command fills it in when the data holds one site only. */
    site: z.string().refine(isValidSite, `--site must be a site name (${SITE_RULE})`).optional(),
    since: since.optional(),
    minSessions: z.coerce.number().int('--min-sessions must be a whole number').min(1).max(1_000_000_000).optional(),
    engaged: z.boolean().optional(),
    converted: z.boolean().optional(),
    source: text('--source').optional(),
    medium: text('--medium').optional(),
    campaign: text('--campaign').optional(),
    touch: z.enum(AUDIENCE_TOUCHES).default('first'),
    channel: z.enum(CHANNELS).optional(),
    country: z
      .string()
      .regex(/^[A-Za-z]{2}$/, '--country must be an ISO 3166-1 alpha-2 code such as DE')
      .transform((c) => c.toUpperCase())
      .optional(),
    deviceType: text('--device-type').optional(),
  })
  .strict();

export type AudienceFilter = z.output<typeof audienceFilterSchema>;

export const audienceOutputSchema = z
  .object({
    format: z.enum(AUDIENCE_FORMATS).default('ndjson'),
    output: z.string().min(1).default('-'),
    intoTable: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, '--into-table must be a plain table name: letters, digits and _, not starting with a digit')
      .optional(),
    replace: z.boolean().default(false),
    count: z.boolean().default(false),
  })
  .strict();

export type AudienceOutput = z.output<typeof audienceOutputSchema>;

/** The columns of an exported person, in order. Times are ISO-8601 UTC with milliseconds. */
export const AUDIENCE_COLUMNS = [
  'person_id',
  'first_seen',
  'last_seen',
  'sessions',
  'engaged_sessions',
  'converting_sessions',
  'first_source',
  'first_medium',
  'first_campaign',
  'last_source',
  'last_medium',
  'last_campaign',
  'channels',
  'device_types',
  'countries',
  'user_keys',
] as const;

const SELECT_COLUMNS = AUDIENCE_COLUMNS.map((c) =>
  c === 'first_seen' || c === 'last_seen' ? `concat(replaceOne(toString(${c}), ' ', 'T'), 'Z') AS ${c}` : c,
).join(', ');

export interface AudienceQuery {
  /** The WHERE clause (fixed text with parameter placeholders), "1" when no filter. */
  where: string;
  params: Record<string, string | number>;
}

/** The conditions and their parameters; the database name is configuration, not user input. */
export function audienceConditions(filter: AudienceFilter, database: string): AudienceQuery {
  const conditions: string[] = [];
  const params: Record<string, string | number> = {};
  // A person is a (site, person_id); site first: the people views read only that site's parts.
  if (filter.site !== undefined) {
    conditions.push('site = {site:String}');
    params.site = filter.site;
  }
  if (filter.since !== undefined) {
    conditions.push('last_seen >= fromUnixTimestamp64Milli({since:Int64}, \'UTC\')');
    params.since = filter.since;
  }
  if (filter.minSessions !== undefined) {
    conditions.push('sessions >= {min_sessions:UInt64}');
    params.min_sessions = filter.minSessions;
  }
  if (filter.engaged) conditions.push('engaged_sessions > 0');
  if (filter.converted) conditions.push('converting_sessions > 0');
  const touches: Array<['source' | 'medium' | 'campaign', string | undefined]> = [
    ['source', filter.source],
    ['medium', filter.medium],
    ['campaign', filter.campaign],
  ];
  const given = touches.filter(([, value]) => value !== undefined) as Array<['source' | 'medium' | 'campaign', string]>;
  if (given.length > 0) {
    for (const [field, value] of given) params[field] = value;
    if (filter.touch === 'any') {
      // Any session of the person matched all the given values together.
      const match = [...(filter.site !== undefined ? ['site = {site:String}'] : []), ...given.map(([field]) => `${field} = {${field}:String}`)].join(' AND ');
      conditions.push(`person_id IN (SELECT person_id FROM ${database}.session_persons WHERE ${match})`);
    } else {
      for (const [field] of given) conditions.push(`${filter.touch}_${field} = {${field}:String}`);
    }
  }
  if (filter.channel !== undefined) {
    conditions.push('has(channels, {channel:String})');
    params.channel = filter.channel;
  }
  if (filter.country !== undefined) {
    conditions.push('has(countries, {country:String})');
    params.country = filter.country;
  }
  if (filter.deviceType !== undefined) {
    conditions.push('has(device_types, {device_type:String})');
    params.device_type = filter.deviceType;
  }
  return { where: conditions.length > 0 ? conditions.join(' AND ') : '1', params };
}

/** The people who match, in person_id order. */
export function audienceSelect(filter: AudienceFilter, database: string): AudienceQuery & { sql: string } {
  const { where, params } = audienceConditions(filter, database);
  // Filter in a subquery: the formatted times are aliased with the columns' own names.
  return { where, params, sql: `SELECT ${SELECT_COLUMNS} FROM (SELECT * FROM ${database}.persons WHERE ${where}) ORDER BY person_id` };
}

export function audienceCount(filter: AudienceFilter, database: string): AudienceQuery & { sql: string } {
  const { where, params } = audienceConditions(filter, database);
  return { where, params, sql: `SELECT count() AS people FROM ${database}.persons WHERE ${where}` };
}

/**
 * A new table in the configured database holding the audience (a snapshot: activation tools
 * read it while the persons go on changing). `replace` swaps out a table of that name.
 */
export function audienceIntoTable(filter: AudienceFilter, database: string, table: string, replace: boolean): AudienceQuery & { sql: string } {
  const { where, params } = audienceConditions(filter, database);
  const create = replace ? 'CREATE OR REPLACE TABLE' : 'CREATE TABLE';
  return {
    where,
    params: { ...params, audience_table: table },
    sql:
      // With its site, so that `forget` erases a person from it in that site only.
      `${create} ${database}.{audience_table:Identifier} ENGINE = MergeTree ORDER BY (site, person_id) AS ` +
      `SELECT site, ${AUDIENCE_COLUMNS.join(', ')} FROM ${database}.persons WHERE ${where}`,
  };
}
