-- Every valid event the worker consumed (the event format: schemas/event.schema.json), including events too late for streaming:
-- the input of the next recalculation and of ad-hoc analysis. One column per canonical field,
-- nested objects flattened as <object>_<field>; absent values are "". `raw` is the message as
-- received. The Kafka coordinates and received_at have defaults so other writers (backfills,
-- imports) can omit them.
--
-- ReplacingMergeTree on (user_key, timestamp, event_id): a replayed batch adds no duplicates
-- after merges or FINAL. The same dedup window as `sessions` drops a retried insert with the
-- same insert_deduplication_token outright.
CREATE TABLE IF NOT EXISTS {database}.events {on_cluster}
(
    event_id            String,
    user_key            String,
    anonymous_id        String,
    user_id             String,
    timestamp           DateTime64(3, 'UTC'),
    type                LowCardinality(String),
    name                String,
    channel             LowCardinality(String),
    key_event           UInt8,
    page_url            String,
    page_path           String,
    page_title          String,
    page_referrer       String,
    campaign_source     LowCardinality(String),
    campaign_medium     LowCardinality(String),
    campaign_name       LowCardinality(String),
    campaign_term       String,
    campaign_content    String,
    device_type         LowCardinality(String),
    device_os           LowCardinality(String),
    device_browser      LowCardinality(String),
    device_app_version  LowCardinality(String),
    geo_country         LowCardinality(String),
    geo_region          LowCardinality(String),
    geo_city            LowCardinality(String),
    properties          String DEFAULT '{}' COMMENT 'JSON object, as sent',
    raw                 String DEFAULT '' COMMENT 'the original message',
    received_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_topic         LowCardinality(String) DEFAULT '',
    kafka_partition     Int32 DEFAULT -1,
    kafka_offset        Int64 DEFAULT -1,
    INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (user_key, timestamp, event_id)
SETTINGS non_replicated_deduplication_window = 10000;
