-- Sites (docs/sessions.md, "Sites"): every table of events, sessions, roll-ups and people gets a
-- `site` column, the first column of its sorting key, so a query for one site reads only that
-- site's parts (the primary index skips the others). Roll-ups and people are computed per site:
-- two sites never share a roll-up row, a link or a person, even when their ids are equal.
-- Rows from before sites existed become site 'default' (the column's DEFAULT).
--
-- A sorting key's leading column cannot be changed in place, so `migrate` REBUILDS each table
-- declared below whose existing sorting key differs from the declared one
-- (src/clickhouse/rebuild-table.ts): it creates the table under a temporary name, copies every
-- stored row into it, swaps the two with RENAME and drops the old one. Each step can run again
-- after an interruption (the copy starts over from an empty table until the swap is done), so a
-- `migrate` killed midway and run again ends exactly where a clean run does, with no row lost or
-- doubled. Stop the workers while this file is applied: rows written to a table during its copy
-- are not moved, and the roll-up views are dropped until the end of the file.
--
-- On a new database, 001-014 create the tables first and this file rebuilds them while empty.

-- The views read the tables being rebuilt; they are created again, per site, at the end.
DROP VIEW IF EXISTS {database}.persons {on_cluster};
DROP VIEW IF EXISTS {database}.person_sessions {on_cluster};
DROP VIEW IF EXISTS {database}.session_persons {on_cluster};
DROP VIEW IF EXISTS {database}.identity_map {on_cluster};
DROP VIEW IF EXISTS {database}.sessions_daily_mv {on_cluster};
DROP VIEW IF EXISTS {database}.users_daily_mv {on_cluster};
DROP VIEW IF EXISTS {database}.identity_links_mv {on_cluster};

-- Sessions (001_sessions.sql), sorted by site first.
CREATE TABLE IF NOT EXISTS {database}.sessions {on_cluster}
(
    site                LowCardinality(String) DEFAULT 'default',
    session_id          String,
    user_key            String,
    anonymous_id        String,
    user_id             String,
    started_at          DateTime64(3, 'UTC'),
    ended_at            DateTime64(3, 'UTC'),
    duration_ms         UInt64,
    events              UInt32,
    views               UInt32,
    entry_page          String,
    exit_page           String,
    source              LowCardinality(String),
    medium              LowCardinality(String),
    campaign            LowCardinality(String),
    term                String,
    content             String,
    channel             LowCardinality(String),
    device_type         LowCardinality(String),
    os                  LowCardinality(String),
    browser             LowCardinality(String),
    app_version         LowCardinality(String),
    country             LowCardinality(String),
    region              LowCardinality(String),
    city                LowCardinality(String),
    is_engaged          UInt8,
    is_bounce           UInt8,
    session_number      UInt32,
    previous_session_id String,
    is_open             UInt8,
    sign                Int8,
    version             UInt64,
    INDEX user_key_bloom user_key TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(started_at)
ORDER BY (site, toDate(started_at), user_key, session_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Events (002_events.sql as 014_events_raw.sql left it), sorted by site first.
CREATE TABLE IF NOT EXISTS {database}.events {on_cluster}
(
    site                LowCardinality(String) DEFAULT 'default',
    event_id            String,
    user_key            String,
    anonymous_id        String,
    user_id             String,
    timestamp           DateTime64(3, 'UTC'),
    type                LowCardinality(String),
    name                String ALIAS JSONExtractString(raw, 'name'),
    channel             LowCardinality(String),
    key_event           UInt8,
    page_url            String ALIAS JSONExtractString(raw, 'page', 'url'),
    page_path           String ALIAS JSONExtractString(raw, 'page', 'path'),
    page_title          String ALIAS JSONExtractString(raw, 'page', 'title'),
    page_referrer       String ALIAS JSONExtractString(raw, 'page', 'referrer'),
    campaign_source     LowCardinality(String) ALIAS JSONExtractString(raw, 'campaign', 'source'),
    campaign_medium     LowCardinality(String) ALIAS JSONExtractString(raw, 'campaign', 'medium'),
    campaign_name       LowCardinality(String) ALIAS JSONExtractString(raw, 'campaign', 'name'),
    campaign_term       String ALIAS JSONExtractString(raw, 'campaign', 'term'),
    campaign_content    String ALIAS JSONExtractString(raw, 'campaign', 'content'),
    device_type         LowCardinality(String) ALIAS JSONExtractString(raw, 'device', 'type'),
    device_os           LowCardinality(String) ALIAS JSONExtractString(raw, 'device', 'os'),
    device_browser      LowCardinality(String) ALIAS JSONExtractString(raw, 'device', 'browser'),
    device_app_version  LowCardinality(String) ALIAS JSONExtractString(raw, 'device', 'app_version'),
    geo_country         LowCardinality(String) ALIAS upper(JSONExtractString(raw, 'geo', 'country')),
    geo_region          LowCardinality(String) ALIAS JSONExtractString(raw, 'geo', 'region'),
    geo_city            LowCardinality(String) ALIAS JSONExtractString(raw, 'geo', 'city'),
    properties          String ALIAS if(JSONType(raw, 'properties') = 'Object', JSONExtractRaw(raw, 'properties'), '{}'),
    raw                 String DEFAULT '' COMMENT 'the original message' CODEC(ZSTD(1)),
    received_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_topic         LowCardinality(String) DEFAULT '',
    kafka_partition     Int32 DEFAULT -1,
    kafka_offset        Int64 DEFAULT -1,
    INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site, user_key, timestamp, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- The daily roll-ups (003_rollups.sql), per site.
CREATE TABLE IF NOT EXISTS {database}.sessions_daily {on_cluster}
(
    site             LowCardinality(String) DEFAULT 'default',
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
ORDER BY (site, day, channel, source, medium, campaign, device_type, country)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {database}.users_daily {on_cluster}
(
    site        LowCardinality(String) DEFAULT 'default',
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
ORDER BY (site, day, channel, source, medium, campaign, device_type, country, user_key)
SETTINGS non_replicated_deduplication_window = 10000;

-- Identity links (013_people.sql), per (site, anonymous_id): a device links to a user of its
-- own site only.
CREATE TABLE IF NOT EXISTS {database}.identity_links {on_cluster}
(
    site         LowCardinality(String) DEFAULT 'default',
    anonymous_id String,
    latest       SimpleAggregateFunction(max, Tuple(linked_at DateTime64(3, 'UTC'), event_id String, user_id String))
)
ENGINE = AggregatingMergeTree
ORDER BY (site, anonymous_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.sessions_daily_mv {on_cluster}
TO {database}.sessions_daily
AS SELECT
    site,
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
GROUP BY site, day, channel, source, medium, campaign, device_type, country;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.users_daily_mv {on_cluster}
TO {database}.users_daily
AS SELECT
    site,
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
GROUP BY site, day, channel, source, medium, campaign, device_type, country, user_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.identity_links_mv {on_cluster}
TO {database}.identity_links
AS SELECT
    site,
    anonymous_id,
    max(tuple(timestamp, event_id, user_id)) AS latest
FROM {database}.events
WHERE anonymous_id != '' AND user_id != ''
GROUP BY site, anonymous_id;

-- The identity map, one row per linked (site, anonymous_id).
CREATE VIEW IF NOT EXISTS {database}.identity_map {on_cluster}
AS SELECT
    site,
    anonymous_id,
    latest.user_id   AS user_id,
    latest.linked_at AS linked_at
FROM {database}.identity_links FINAL;

-- Every current session with its person, as in 013_people.sql, with both joins within the
-- session's site: a person_id is only meaningful together with its site.
CREATE VIEW IF NOT EXISTS {database}.session_persons {on_cluster}
AS SELECT
    s.site                AS site,
    s.session_id          AS session_id,
    s.user_key            AS user_key,
    s.anonymous_id        AS anonymous_id,
    s.user_id             AS user_id,
    s.started_at          AS started_at,
    s.ended_at            AS ended_at,
    s.duration_ms         AS duration_ms,
    s.events              AS events,
    s.views               AS views,
    s.entry_page          AS entry_page,
    s.exit_page           AS exit_page,
    s.source              AS source,
    s.medium              AS medium,
    s.campaign            AS campaign,
    s.term                AS term,
    s.content             AS content,
    s.channel             AS channel,
    s.device_type         AS device_type,
    s.os                  AS os,
    s.browser             AS browser,
    s.app_version         AS app_version,
    s.country             AS country,
    s.region              AS region,
    s.city                AS city,
    s.is_engaged          AS is_engaged,
    s.is_bounce           AS is_bounce,
    s.session_number      AS session_number,
    s.previous_session_id AS previous_session_id,
    s.is_open             AS is_open,
    multiIf(s.user_id != '', s.user_id, m.user_id != '', m.user_id, s.user_key) AS person_id,
    toUInt8(arrayExists(t -> t >= s.started_at AND t <= s.ended_at, k.key_event_times)) AS is_converting
FROM {database}.sessions AS s FINAL
LEFT JOIN {database}.identity_map AS m ON s.site = m.site AND s.anonymous_id = m.anonymous_id
LEFT JOIN
(
    SELECT site, user_key, groupArray(timestamp) AS key_event_times
    FROM {database}.events
    WHERE key_event = 1
    GROUP BY site, user_key
) AS k ON s.site = k.site AND s.user_key = k.user_key
WHERE s.sign = 1;

-- A person's journey, numbered within (site, person_id). Filter on site and person_id
-- (WHERE site = … AND person_id IN (…)): ClickHouse applies both before the window.
CREATE VIEW IF NOT EXISTS {database}.person_sessions {on_cluster}
AS SELECT
    *,
    toUInt32(row_number() OVER journey)     AS person_session_number,
    lagInFrame(session_id, 1, '') OVER journey AS previous_person_session_id
FROM {database}.session_persons
WINDOW journey AS (PARTITION BY site, person_id ORDER BY started_at, session_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

-- One row per (site, person), as in 013_people.sql (the encoding of the touches is explained there).
CREATE VIEW IF NOT EXISTS {database}.persons {on_cluster}
AS SELECT
    site,
    person_id,
    first_seen,
    last_seen,
    sessions,
    engaged_sessions,
    converting_sessions,
    substring(first_touch, 11, toUInt32(substring(first_touch, 1, 5)))                                                AS first_source,
    substring(first_touch, 11 + toUInt32(substring(first_touch, 1, 5)), toUInt32(substring(first_touch, 6, 5)))      AS first_medium,
    substring(first_touch, 11 + toUInt32(substring(first_touch, 1, 5)) + toUInt32(substring(first_touch, 6, 5)))     AS first_campaign,
    substring(last_touch, 11, toUInt32(substring(last_touch, 1, 5)))                                                  AS last_source,
    substring(last_touch, 11 + toUInt32(substring(last_touch, 1, 5)), toUInt32(substring(last_touch, 6, 5)))         AS last_medium,
    substring(last_touch, 11 + toUInt32(substring(last_touch, 1, 5)) + toUInt32(substring(last_touch, 6, 5)))        AS last_campaign,
    channels,
    device_types,
    countries,
    user_keys,
    first_converted_at
FROM
(
    SELECT
        site,
        person_id,
        min(started_at)                                              AS first_seen,
        max(ended_at)                                                AS last_seen,
        count()                                                      AS sessions,
        sum(is_engaged)                                              AS engaged_sessions,
        sum(is_converting)                                           AS converting_sessions,
        argMin(touch, journey_key)                                   AS first_touch,
        argMax(touch, journey_key)                                   AS last_touch,
        arraySort(groupUniqArrayIf(channel, channel != ''))         AS channels,
        arraySort(groupUniqArrayIf(device_type, device_type != '')) AS device_types,
        arraySort(groupUniqArrayIf(country, country != ''))         AS countries,
        uniqExact(user_key)                                          AS user_keys,
        minIfOrNull(started_at, is_converting = 1)                   AS first_converted_at
    FROM
    (
        SELECT
            site, person_id, started_at, ended_at, is_engaged, is_converting, channel, device_type, country, user_key,
            bitOr(bitShiftLeft(toUInt128(toUnixTimestamp64Milli(started_at)), 64),
                  toUInt128(reinterpretAsUInt64(reverse(unhex(substring(session_id, 1, 16)))))) AS journey_key,
            concat(leftPad(toString(length(source)), 5, '0'), leftPad(toString(length(medium)), 5, '0'),
                   source, medium, campaign) AS touch
        FROM {database}.session_persons
    )
    GROUP BY site, person_id
);
