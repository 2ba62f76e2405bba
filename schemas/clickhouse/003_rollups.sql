-- Daily roll-ups for dashboards and `sessionizer report`, fed by materialized views on
-- `sessions`. Every measure is weighted by `sign`: a cancel row (sign = -1, an exact copy of
-- a written row) subtracts exactly what its original added, so once summed the roll-ups equal
-- the same aggregates over `sessions FINAL WHERE sign = 1`, whatever has been retracted,
-- merged or re-attributed. "day" is toDate(started_at) in UTC.
--
-- Read them with sum() and GROUP BY, never row by row: SummingMergeTree only adds rows up
-- when parts merge, and drops a row once all its sums are 0 (a fully retracted group).
--
-- Both targets keep a dedup window: a retried insert into `sessions` with the same
-- insert_deduplication_token is dropped in the roll-ups too (ClickHouse derives the views'
-- block ids from the source insert), instead of being counted twice.

-- Sessions and their measures per day x channel x source x medium x campaign x device x country.
CREATE TABLE IF NOT EXISTS {database}.sessions_daily {on_cluster}
(
    day              Date,
    channel          LowCardinality(String),
    source           LowCardinality(String),
    medium           LowCardinality(String),
    campaign         LowCardinality(String),
    device_type      LowCardinality(String),
    country          LowCardinality(String),
    sessions         Int64 COMMENT 'sum(sign)',
    engaged_sessions Int64 COMMENT 'sum(sign * is_engaged)',
    bounces          Int64 COMMENT 'sum(sign * is_bounce)',
    duration_ms      Int64 COMMENT 'sum(sign * duration_ms)',
    views            Int64 COMMENT 'sum(sign * views)',
    events           Int64 COMMENT 'sum(sign * events)'
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, channel, source, medium, campaign, device_type, country)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.sessions_daily_mv {on_cluster}
TO {database}.sessions_daily
AS SELECT
    toDate(started_at)               AS day,
    channel,
    source,
    medium,
    campaign,
    device_type,
    country,
    sum(sign)                        AS sessions,
    sum(sign * is_engaged)           AS engaged_sessions,
    sum(sign * is_bounce)            AS bounces,
    sum(sign * toInt64(duration_ms)) AS duration_ms,
    sum(sign * toInt64(views))       AS views,
    sum(sign * toInt64(events))      AS events
FROM {database}.sessions
GROUP BY day, channel, source, medium, campaign, device_type, country;

-- Distinct users. A uniq/uniqExact state cannot take a user back out when the only session
-- that put them there is retracted (e.g. a late event merges their day-D session into one
-- that started on day D-1), so it would over-count. Instead each (day, dimensions, user_key)
-- keeps its net number of current sessions, sum(sign): a retracted-and-rewritten session
-- nets to 1 (the user still counts once), a retraction without a rewrite nets to 0 (the row
-- disappears on merge). Users of a day or group = count of user_keys whose net sum is > 0,
-- which equals uniqExact(user_key) over `sessions FINAL WHERE sign = 1` for the same
-- day/group. Users are distinct per group: summing them across groups double-counts a user
-- seen in several groups; query the day without that dimension instead.
CREATE TABLE IF NOT EXISTS {database}.users_daily {on_cluster}
(
    day         Date,
    channel     LowCardinality(String),
    source      LowCardinality(String),
    medium      LowCardinality(String),
    campaign    LowCardinality(String),
    device_type LowCardinality(String),
    country     LowCardinality(String),
    user_key    String,
    sessions    Int64 COMMENT 'sum(sign): the user''s current sessions in this day and group'
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, channel, source, medium, campaign, device_type, country, user_key)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.users_daily_mv {on_cluster}
TO {database}.users_daily
AS SELECT
    toDate(started_at) AS day,
    channel,
    source,
    medium,
    campaign,
    device_type,
    country,
    user_key,
    sum(sign)          AS sessions
FROM {database}.sessions
GROUP BY day, channel, source, medium, campaign, device_type, country, user_key;
