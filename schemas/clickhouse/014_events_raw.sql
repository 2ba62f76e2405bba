-- The raw message once: the event's descriptive fields are read from `raw` instead of being
-- stored a second time in their own columns.
--
-- Until now every event was stored twice: as the message (`raw`) and as 18 columns holding the
-- same text (name, page_*, campaign_*, device_*, geo_*, properties). Writing, compressing and
-- merging both was most of what ClickHouse spent on the pipeline. The columns stay, with the
-- same names, types and values (absent = "", the country in upper case, properties as a JSON
-- object, "{}" when absent), as ALIAS columns computed from `raw` when read; queries, the views
-- and recalculation read them as before. The columns that sort, filter and join (ids, user key,
-- time, type, channel, key_event) and the Kafka coordinates stay stored.
--
-- Writers must now fill `raw` with the event as JSON (the worker and `produce --backfill` do);
-- an insert naming an ALIAS column is refused. Rows written without `raw` before this file (an
-- import that filled only the columns) first get a `raw` rebuilt from their columns, so none of
-- their values is lost; the statement waits until that is done (mutations_sync = 2).
--
-- `raw` is compressed with ZSTD(1): JSON text compresses about a third better than with the
-- default LZ4, and writing and merging fewer bytes cost ClickHouse less CPU, not more, as
-- measured (BENCHMARKS.md). Parts written before keep LZ4 until they are merged.
ALTER TABLE {database}.events {on_cluster}
UPDATE raw = concat(
    '{"event_id":', toJSONString(event_id),
    ',"type":', toJSONString(toString(type)),
    ',"name":', toJSONString(name),
    ',"timestamp":', toString(toUnixTimestamp64Milli(timestamp)),
    ',"anonymous_id":', toJSONString(anonymous_id),
    ',"user_id":', toJSONString(user_id),
    ',"channel":', toJSONString(toString(channel)),
    ',"key_event":', if(key_event = 1, 'true', 'false'),
    ',"page":{"url":', toJSONString(page_url), ',"path":', toJSONString(page_path),
        ',"title":', toJSONString(page_title), ',"referrer":', toJSONString(page_referrer), '}',
    ',"campaign":{"source":', toJSONString(toString(campaign_source)), ',"medium":', toJSONString(toString(campaign_medium)),
        ',"name":', toJSONString(toString(campaign_name)), ',"term":', toJSONString(campaign_term),
        ',"content":', toJSONString(campaign_content), '}',
    ',"device":{"type":', toJSONString(toString(device_type)), ',"os":', toJSONString(toString(device_os)),
        ',"browser":', toJSONString(toString(device_browser)), ',"app_version":', toJSONString(toString(device_app_version)), '}',
    ',"geo":{"country":', toJSONString(toString(geo_country)), ',"region":', toJSONString(toString(geo_region)),
        ',"city":', toJSONString(toString(geo_city)), '}',
    ',"properties":', if(properties = '', '{}', properties),
    '}')
WHERE raw = ''
SETTINGS mutations_sync = 2;

ALTER TABLE {database}.events {on_cluster}
    MODIFY COLUMN name String ALIAS JSONExtractString(raw, 'name'),
    MODIFY COLUMN page_url String ALIAS JSONExtractString(raw, 'page', 'url'),
    MODIFY COLUMN page_path String ALIAS JSONExtractString(raw, 'page', 'path'),
    MODIFY COLUMN page_title String ALIAS JSONExtractString(raw, 'page', 'title'),
    MODIFY COLUMN page_referrer String ALIAS JSONExtractString(raw, 'page', 'referrer'),
    MODIFY COLUMN campaign_source LowCardinality(String) ALIAS JSONExtractString(raw, 'campaign', 'source'),
    MODIFY COLUMN campaign_medium LowCardinality(String) ALIAS JSONExtractString(raw, 'campaign', 'medium'),
    MODIFY COLUMN campaign_name LowCardinality(String) ALIAS JSONExtractString(raw, 'campaign', 'name'),
    MODIFY COLUMN campaign_term String ALIAS JSONExtractString(raw, 'campaign', 'term'),
    MODIFY COLUMN campaign_content String ALIAS JSONExtractString(raw, 'campaign', 'content'),
    MODIFY COLUMN device_type LowCardinality(String) ALIAS JSONExtractString(raw, 'device', 'type'),
    MODIFY COLUMN device_os LowCardinality(String) ALIAS JSONExtractString(raw, 'device', 'os'),
    MODIFY COLUMN device_browser LowCardinality(String) ALIAS JSONExtractString(raw, 'device', 'browser'),
    MODIFY COLUMN device_app_version LowCardinality(String) ALIAS JSONExtractString(raw, 'device', 'app_version'),
    MODIFY COLUMN geo_country LowCardinality(String) ALIAS upper(JSONExtractString(raw, 'geo', 'country')),
    MODIFY COLUMN geo_region LowCardinality(String) ALIAS JSONExtractString(raw, 'geo', 'region'),
    MODIFY COLUMN geo_city LowCardinality(String) ALIAS JSONExtractString(raw, 'geo', 'city'),
    MODIFY COLUMN properties String ALIAS if(JSONType(raw, 'properties') = 'Object', JSONExtractRaw(raw, 'properties'), '{}');

ALTER TABLE {database}.events {on_cluster}
    MODIFY COLUMN raw String DEFAULT '' CODEC(ZSTD(1));
