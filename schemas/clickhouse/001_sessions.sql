-- Sessions (the session rules and fields: docs/sessions.md): one row per session state written by the worker.
--
-- The worker writes a start record (is_open = 1) when a session begins and an end record
-- (is_open = 0) when it closes; each new state first cancels the previous one with an exact
-- copy of it carrying sign = -1 (same version), then writes the new state with sign = +1 and
-- a higher version. VersionedCollapsingMergeTree collapses each +1/-1 pair in merges and
-- under FINAL, so:
--   current sessions:        SELECT ... FROM sessions FINAL WHERE sign = 1
--   counts without FINAL:    sum(sign), sum(sign * views), ...
--
-- Sort key: a session's started_at never changes for a given session_id (the id is derived
-- from it), so a cancel row always lands next to the row it cancels. The day prefix keeps
-- date-range scans cheap; the bloom filter on user_key makes one user's sessions cheap too.
--
-- non_replicated_deduplication_window: a retried insert carrying the same
-- insert_deduplication_token as an earlier one is dropped (idempotent flushes).
CREATE TABLE IF NOT EXISTS {database}.sessions {on_cluster}
(
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
ORDER BY (toDate(started_at), user_key, session_id)
SETTINGS non_replicated_deduplication_window = 10000;
