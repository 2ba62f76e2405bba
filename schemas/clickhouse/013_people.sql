-- People: identity links, the identity map, and sessions and metrics per person
-- (docs/sessions.md, "People"; docs/queries.md).
--
-- A link is an event with both a non-empty anonymous_id and a non-empty user_id. For each
-- anonymous_id the identity map holds the user_id of its latest link, latest by
-- (timestamp, event_id); among copies of one event id at one time, the greatest user_id.
--
-- identity_links is fed from `events` by a materialized view, so every writer of `events`
-- (the worker, backfills, imports) records links with no code of its own. Each row holds the
-- greatest (linked_at, event_id, user_id) of its insert block; AggregatingMergeTree keeps the
-- greatest per anonymous_id as parts merge. max() is idempotent and order-free, so a
-- redelivered or re-inserted event, a late link or a SIGKILL between the events insert and
-- the offset commit can never change the result: the map is a pure function of the set of
-- events stored. (A ReplacingMergeTree needs its version as one number, and
-- "(time, event_id)" is not one: two links in one millisecond would be decided by insert
-- order, which differs between the worker and recompute.)
CREATE TABLE IF NOT EXISTS {database}.identity_links {on_cluster}
(
    anonymous_id String,
    latest       SimpleAggregateFunction(max, Tuple(linked_at DateTime64(3, 'UTC'), event_id String, user_id String))
)
ENGINE = AggregatingMergeTree
ORDER BY anonymous_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.identity_links_mv {on_cluster}
TO {database}.identity_links
AS SELECT
    anonymous_id,
    max(tuple(timestamp, event_id, user_id)) AS latest
FROM {database}.events
WHERE anonymous_id != '' AND user_id != ''
GROUP BY anonymous_id;

-- The identity map as `recompute --identities` writes it: one row per linked anonymous_id.
-- FINAL merges the parts' maxima (as GROUP BY would, several times faster).
CREATE VIEW IF NOT EXISTS {database}.identity_map {on_cluster}
AS SELECT
    anonymous_id,
    latest.user_id   AS user_id,
    latest.linked_at AS linked_at
FROM {database}.identity_links FINAL;

-- Every current session with its person, resolved when read (a login claims the device's
-- earlier anonymous sessions at once): the session's own user_id, else the identity map's
-- user_id for its anonymous_id, else its user_key. is_converting: a key event of the
-- session's user_key is stored in `events` between its started_at and ended_at. (The
-- right-hand sides of both joins are small: linked devices, and keys with key events.)
CREATE VIEW IF NOT EXISTS {database}.session_persons {on_cluster}
AS SELECT
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
LEFT JOIN {database}.identity_map AS m ON s.anonymous_id = m.anonymous_id
LEFT JOIN
(
    SELECT user_key, groupArray(timestamp) AS key_event_times
    FROM {database}.events
    WHERE key_event = 1
    GROUP BY user_key
) AS k ON s.user_key = k.user_key
WHERE s.sign = 1;

-- A person's journey: their sessions across ids, devices and channels in (started_at,
-- session_id) order, numbered from 1, each with the id of the one before ("" for the first).
-- Filter on person_id (WHERE person_id IN (…)): ClickHouse applies it before the window, so
-- only those journeys are sorted; a filter on other columns comes after numbering everything.
CREATE VIEW IF NOT EXISTS {database}.person_sessions {on_cluster}
AS SELECT
    *,
    toUInt32(row_number() OVER journey)     AS person_session_number,
    lagInFrame(session_id, 1, '') OVER journey AS previous_person_session_id
FROM {database}.session_persons
WINDOW journey AS (PARTITION BY person_id ORDER BY started_at, session_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

-- One row per person, for segmentation and audiences. First touch: the source, medium and
-- campaign of the person's first session (journey order); last touch: of the latest. The sets
-- are sorted, without "".
--
-- Speed (measured at 1 M sessions, BENCHMARKS.md): argMin over a tuple key and tuple values
-- was 4-5x slower than one numeric key and one string value. So journey order is the UInt128
-- (started_at in ms, then the first 16 hex digits of session_id: the order of
-- (started_at, session_id) unless two ids of one millisecond share 64 bits), and the three
-- values travel as one string: their byte lengths in 5 digits each (a message is at most
-- 64 KiB), then the values, which any bytes may fill.
CREATE VIEW IF NOT EXISTS {database}.persons {on_cluster}
AS SELECT
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
            person_id, started_at, ended_at, is_engaged, is_converting, channel, device_type, country, user_key,
            bitOr(bitShiftLeft(toUInt128(toUnixTimestamp64Milli(started_at)), 64),
                  toUInt128(reinterpretAsUInt64(reverse(unhex(substring(session_id, 1, 16)))))) AS journey_key,
            concat(leftPad(toString(length(source)), 5, '0'), leftPad(toString(length(medium)), 5, '0'),
                   source, medium, campaign) AS touch
        FROM {database}.session_persons
    )
    GROUP BY person_id
);

-- Links of the events stored before this file was applied (identity_links_mv sees new inserts
-- only). It runs after the view exists, so no event falls between the two; an event seen by
-- both is counted twice by max(), which changes nothing.
INSERT INTO {database}.identity_links
SELECT
    anonymous_id,
    max(tuple(timestamp, event_id, user_id)) AS latest
FROM {database}.events
WHERE anonymous_id != '' AND user_id != ''
GROUP BY anonymous_id;
