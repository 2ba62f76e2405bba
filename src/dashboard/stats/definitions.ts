/**
 * The one table of what the dashboard, the Stats API and CSV export can ask for: each metric
 * and each dimension is a name bound to SQL over one row of `sessions` (schemas/clickhouse/
 * 001_sessions.sql). A new metric or dimension is one entry here; the query builder
 * (query-sql.ts) knows nothing about any particular one.
 *
 * Rows of `sessions` are session *states* weighted by `sign` (a replaced state is cancelled by
 * an exact copy with sign = -1), so every measure below is a sign-weighted sum and is read
 * without FINAL: a cancelled state adds exactly nothing, whatever it was grouped or filtered by.
 */

/**
 * Sign-weighted sums per group (and per user key, when visitors are asked for). `converting`
 * is 1 for a session during which its user key has a key event in `events` (the same rule as
 * the `session_persons` view, docs/queries.md): sessions carry no key-event column of their own.
 */
export const SUMS = {
  n_visits: 'sum(sign)',
  n_views: 'sum(sign * toInt64(views))',
  n_bounces: 'sum(sign * toInt64(is_bounce))',
  n_engaged: 'sum(sign * toInt64(is_engaged))',
  n_duration_ms: 'sum(sign * toInt64(duration_ms))',
  n_events: 'sum(sign * toInt64(events))',
  n_conversions: 'sum(sign * toInt64(arrayExists(t -> t >= started_at AND t <= ended_at, key_event_times)))',
} as const;
export type SumName = keyof typeof SUMS;

export interface MetricDefinition {
  /** The sums it is computed from. */
  sums: readonly SumName[];
  /** SQL over the group's sums (each `sum(<name>)` of the per-user rows, or the sums themselves). */
  sql: string;
  /** Needs distinct user keys: the builder then groups by user key first. */
  perUser?: boolean;
  /** Ours, not Plausible's (documented in docs/dashboard.md). */
  ours?: boolean;
  description: string;
}

const ratio = (numerator: string, scale: number, digits: number) =>
  `if(n_visits_ = 0, 0, round(${scale} * ${numerator} / n_visits_, ${digits}))`;

/**
 * Metrics, in terms of the group totals the builder names `<sum>_` (and `visitors_`).
 * Percentages carry two decimals, views per visit two, the average duration whole seconds.
 */
export const METRICS: Readonly<Record<string, MetricDefinition>> = {
  visitors: { sums: ['n_visits'], sql: 'visitors_', perUser: true, description: 'distinct user keys with a session that started in the range' },
  visits: { sums: ['n_visits'], sql: 'n_visits_', description: 'sessions that started in the range' },
  pageviews: { sums: ['n_views'], sql: 'n_views_', description: 'page and screen views of those sessions' },
  views_per_visit: { sums: ['n_visits', 'n_views'], sql: ratio('n_views_', 1, 2), description: 'pageviews / visits' },
  bounce_rate: { sums: ['n_visits', 'n_bounces'], sql: ratio('n_bounces_', 100, 2), description: '100 × bounced sessions / visits' },
  visit_duration: { sums: ['n_visits', 'n_duration_ms'], sql: ratio('n_duration_ms_', 0.001, 0), description: 'mean session duration, seconds' },
  events: { sums: ['n_events'], sql: 'n_events_', description: 'events of those sessions' },
  conversion_rate: { sums: ['n_visits', 'n_conversions'], sql: ratio('n_conversions_', 100, 2), description: '100 × sessions with a key event / visits' },
  engaged_rate: { sums: ['n_visits', 'n_engaged'], sql: ratio('n_engaged_', 100, 2), ours: true, description: '100 × engaged sessions / visits' },
  conversions: { sums: ['n_conversions'], sql: 'n_conversions_', ours: true, description: 'sessions with a key event' },
};

/**
 * Metrics of identified people (ours), computed by their own query (people-sql.ts) and asked
 * without dimensions and without the session metrics above. A session's person is its own
 * `user_id`, else the `user_id` its device (`anonymous_id`) was last logged in as (the identity
 * map); a session with neither has no identified person. A person is "cross-device" when their
 * sessions of the range (and filters) have two or more distinct non-empty device types.
 */
export const PERSON_METRICS: Readonly<Record<string, { sql: string; description: string }>> = {
  identified_people: { sql: 'identified_people_', description: 'identified people with a session that started in the range' },
  identified_visits: { sql: 'identified_visits_', description: 'sessions of those people' },
  cross_device_people: { sql: 'cross_device_people_', description: 'of those people, the ones seen on two or more device types' },
  cross_device_visits: { sql: 'cross_device_visits_', description: 'sessions of the cross-device people' },
  cross_device_share: {
    sql: 'if(identified_people_ = 0, 0, round(100 * cross_device_people_ / identified_people_, 2))',
    description: '100 × cross-device people / identified people',
  },
};

export interface DimensionDefinition {
  /** SQL over a `sessions` row. */
  sql: string;
  /** The SQL uses `channel_map`, which the builder then defines (see CHANNEL_MAP_SQL). */
  needsChannelMap?: boolean;
  ours?: boolean;
  description: string;
}

const SEARCH_ENGINES = ['google', 'bing', 'duckduckgo', 'yahoo', 'yandex', 'baidu', 'ecosia', 'qwant', 'naver', 'seznam', 'startpage', 'brave', 'ask', 'aol', 'sogou', 'so', 'perplexity'];
const SOCIAL_SITES = ['facebook', 'fb', 'instagram', 'twitter', 't', 'x', 'linkedin', 'lnkd', 'reddit', 'pinterest', 'tiktok', 'snapchat', 'threads', 'bsky', 'mastodon', 'quora', 'tumblr', 'vk', 'weibo', 'whatsapp', 'telegram', 'discord', 'news.ycombinator'];
const VIDEO_SITES = ['youtube', 'youtu', 'vimeo', 'twitch', 'dailymotion'];

/** `source` is one of these sites: as a bare name ("google") or a host ("www.google.co.uk", "l.facebook.com"). */
const sourceIs = (names: string[]) => `match(lower(source), '(^|\\\\.)(${names.map((n) => n.replace(/\./g, '\\\\.')).join('|')})($|\\\\.)')`;
const mediumMatches = (pattern: string) => `match(lower(medium), '${pattern}')`;
const PAID = mediumMatches('^(.*cp.*|ppc|retargeting|paid.*)$');

/**
 * Acquisition channel of a session from its source, medium and campaign: the first rule that
 * matches wins (docs/dashboard.md, "Channels", lists them in this order). Modelled on GA4's
 * default channel grouping, as Plausible's is.
 */
export const CHANNEL_SQL = `multiIf(
  source = '(direct)' OR (source = '' AND medium IN ('', '(none)')), 'Direct',
  ${mediumMatches('^(.*cp.*|ppc|retargeting|paid.*)$')} AND ${sourceIs(SEARCH_ENGINES)}, 'Paid Search',
  ${PAID} AND ${sourceIs(SOCIAL_SITES)}, 'Paid Social',
  ${PAID} AND ${sourceIs(VIDEO_SITES)}, 'Paid Video',
  ${mediumMatches('^(display|banner|expandable|interstitial|cpm)$')}, 'Display',
  ${PAID}, 'Paid Other',
  ${sourceIs(SEARCH_ENGINES)} OR medium = 'organic', 'Organic Search',
  ${sourceIs(SOCIAL_SITES)} OR ${mediumMatches('^(social|social-network|social-media|sm|social network|social media)$')}, 'Organic Social',
  ${sourceIs(VIDEO_SITES)} OR ${mediumMatches('video')}, 'Organic Video',
  ${mediumMatches('e[-_ ]?mail|newsletter')} OR ${sourceIs(['email', 'e-mail', 'newsletter', 'mail'])}, 'Email',
  medium = 'affiliate', 'Affiliates',
  medium IN ('sms') OR source = 'sms', 'SMS',
  ${mediumMatches('^(.*push.*|mobile|notification)$')}, 'Mobile Push Notifications',
  medium = 'referral', 'Referral',
  'Unassigned')`;

/**
 * The channel of each (source, medium) pair of the site's sessions in range, as two arrays
 * (`channel_map.1` the pairs, `channel_map.2` their channels). CHANNEL_SQL's dozen regular
 * expressions then run once per distinct pair, a few hundred, instead of once per session;
 * each session only looks its pair up. `{where}` is the site and range condition.
 */
export const CHANNEL_MAP_SQL = (database: string, where: string) => `(
  SELECT (groupArray(concat(toString(source), '\\0', toString(medium))), groupArray(${CHANNEL_SQL.replace(/\n\s*/g, ' ')}))
  FROM (SELECT DISTINCT source, medium FROM ${database}.sessions WHERE ${where})
) AS channel_map`;

/** ISO 3166-1 alpha-2 code → English name, from the runtime's ICU data. */
function countryNames(): [string, string][] {
  const names = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });
  const pairs: [string, string][] = [];
  for (let a = 65; a <= 90; a++) {
    for (let b = 65; b <= 90; b++) {
      const code = String.fromCharCode(a, b);
      const name = names.of(code);
      if (name && name !== code) pairs.push([code, name]);
    }
  }
  return pairs;
}
const quote = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const COUNTRIES = countryNames();
const COUNTRY_NAME_SQL = `transform(toString(country), [${COUNTRIES.map(([c]) => quote(c)).join(',')}], [${COUNTRIES.map(([, n]) => quote(n)).join(',')}], '')`;

const column = (name: string, description: string, ours = false): DimensionDefinition => ({ sql: `toString(${name})`, description, ours });

/** Visit dimensions (also what filters may name). Time dimensions are in query-sql.ts. */
export const DIMENSIONS: Readonly<Record<string, DimensionDefinition>> = {
  'visit:source': column('source', 'campaign source, else the referring host without www., else (direct)'),
  'visit:channel': {
    sql: "transform(concat(toString(source), '\\0', toString(medium)), channel_map.1, channel_map.2, 'Unassigned')",
    needsChannelMap: true,
    description: 'acquisition channel grouped from source and medium (docs/dashboard.md)',
  },
  'visit:utm_source': { sql: "if(medium = 'referral' OR source = '(direct)', '', toString(source))", description: 'campaign source (utm_source); empty for referrals and direct visits' },
  'visit:utm_medium': { sql: "if(medium IN ('referral', '(none)'), '', toString(medium))", description: 'campaign medium (utm_medium)' },
  'visit:utm_campaign': column('campaign', 'campaign name (utm_campaign)'),
  'visit:utm_term': column('term', 'campaign term (utm_term)'),
  'visit:utm_content': column('content', 'campaign content (utm_content)'),
  'visit:entry_page': column('entry_page', 'location of the first view'),
  'visit:exit_page': column('exit_page', 'location of the last view'),
  'visit:country': column('country', 'ISO 3166-1 alpha-2 code'),
  'visit:country_name': { sql: COUNTRY_NAME_SQL, description: 'English name of the country' },
  'visit:region': column('region', 'region name, as the geo lookup gave it'),
  'visit:region_name': column('region', 'region name, as the geo lookup gave it'),
  'visit:city': column('city', 'city name, as the geo lookup gave it'),
  'visit:city_name': column('city', 'city name, as the geo lookup gave it'),
  'visit:device': column('device_type', 'device type (desktop, mobile, tablet, …)'),
  'visit:browser': column('browser', 'browser name'),
  'visit:os': column('os', 'operating system name'),
  'visit:entry_point': column('channel', 'where the session came in: web, app, server or store (the event channel)', true),
  'visit:medium': column('medium', 'medium: campaign medium, referral, or (none)', true),
  'visit:app_version': column('app_version', 'app version of the session', true),
  'visit:visitor_type': {
    sql: "if(session_number > 1, 'Returning', 'New')",
    ours: true,
    description: "New for a user key's first session, Returning for a later one (the dashboard's people panel)",
  },
};

/**
 * Event dimensions: values of the site's individual events (`events`, one row per event), read
 * per session. A session holds the values of its user key's events that fall between its first
 * and its last event (the rule conversions use); as a dimension, a session counts once in each
 * value it holds, and `events` / `pageviews` count that value's events / views in it; as a
 * filter, a session passes when one of its events matches (negations: when none does).
 */
export interface EventDimensionDefinition {
  /** Which of the site's events hold a value (SQL condition over an `events` row). */
  where: string;
  /** The value of one event (SQL over an `events` row). */
  value: string;
  /** Whether an event of the value `v` (SQL) is a page or screen view: for `pageviews`. */
  isView: (v: string) => string;
  ours?: boolean;
  description: string;
}

/** The event types the engine counts as views (src/events/event-schema.ts, VIEW_TYPES). */
const VIEW_TYPES_SQL = "('page_view', 'screen_view')";

/**
 * What an event is called: our own events say it in `type` (order_completed); a Segment `track`
 * call and a Plausible custom event arrive as type `track` with the event's name in `name`
 * ("Order Completed"), and `name` is read from the raw message only for them. (A track event
 * named page_view would count as a view; the name is all a row keeps.)
 */
const EVENT_NAME_SQL = "if(type = 'track' AND name != '', name, toString(type))";

export const EVENT_DIMENSIONS: Readonly<Record<string, EventDimensionDefinition>> = {
  'event:name': {
    where: '1',
    value: EVENT_NAME_SQL,
    isView: (v) => `${v} IN ${VIEW_TYPES_SQL}`,
    description: 'the event’s name: a track event’s name, else its type (page_view, login, order_completed, …)',
  },
  'event:goal': {
    where: 'key_event = 1',
    value: EVENT_NAME_SQL,
    isView: (v) => `${v} IN ${VIEW_TYPES_SQL}`,
    description: 'the name of a key event (key_event = true): our goals',
  },
  'event:page': {
    where: `type IN ${VIEW_TYPES_SQL}`,
    // The path the engine gives a view (src/events/session-event.ts): page.path, else the path
    // of page.url, else the screen name.
    value: "multiIf(page_path != '', page_path, page_url != '', if(path(page_url) = '', '/', path(page_url)), name)",
    isView: () => '1',
    description: 'path of a page view, or name of a screen view',
  },
};

/** Plausible dimensions we do not have, with why (the 400 answer names them). */
export const UNSUPPORTED_DIMENSIONS: Readonly<Record<string, string>> = {
  'event:hostname': 'events do not record host names apart from their URL',
  'visit:referrer': 'sessions record the referring host as visit:source, not the whole referrer',
  'visit:browser_version': 'sessions do not record browser versions',
  'visit:os_version': 'sessions do not record operating system versions',
  'visit:screen': 'use visit:device',
};
