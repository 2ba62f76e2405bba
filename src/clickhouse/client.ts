/**
 * The one place a ClickHouse client is made from configuration.
 *
 * The client has no default database: every statement names its tables as `database.table`
 * (the database from `Config['clickhouse']`). That lets `migrate` create the database with the
 * same client, and keeps one rule for every module.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import type { Config } from '../config';

/**
 * Settings sent with every request, so behaviour does not depend on the server's defaults
 * (which changed across ClickHouse versions):
 * - `date_time_input_format = best_effort`: our rows carry ISO-8601 times such as
 *   "2024-05-01T10:00:00.000Z", which the `basic` parser rejects (the trailing `Z`).
 * - `async_insert = 0`: the worker batches by itself, and a synchronous insert is what
 *   `insert_deduplication_token` reliably deduplicates on a non-replicated table.
 * - `deduplicate_blocks_in_dependent_materialized_views = 1`: a retried insert dropped by
 *   `sessions` is dropped by the roll-ups fed from it too, instead of being counted twice.
 */
export const CLIENT_SETTINGS: Readonly<ClickHouseSettings> = {
  date_time_input_format: 'best_effort',
  async_insert: 0,
  deduplicate_blocks_in_dependent_materialized_views: 1,
};

/**
 * Added on a cluster (CLICKHOUSE_CLUSTER set), where `sessions` and `events` are Distributed:
 * - `insert_distributed_sync = 1` (now also called `distributed_foreground_insert`): an insert
 *   returns once every shard has its rows, instead of queueing them on the node we talk to. So a
 *   flush the worker acknowledges (and commits Kafka offsets after) is on the shards, and the
 *   `insert_deduplication_token` travels with each shard's rows to the replicated table, whose
 *   Keeper-held block ids drop a retry on whichever replica it reaches.
 */
export const CLUSTER_CLIENT_SETTINGS: Readonly<ClickHouseSettings> = {
  insert_distributed_sync: 1,
};

export interface ClickHouseClientOptions {
  /** Sent as the HTTP client name (visible in system.query_log). Default `sessionizer`. */
  application?: string;
  /** Per-request timeout in milliseconds. Default 60 000: DDL on a cluster can take a while. */
  requestTimeoutMs?: number;
}

export function createClickHouseClient(
  config: Config['clickhouse'],
  options: ClickHouseClientOptions = {},
): ClickHouseClient {
  return createClient({
    url: config.url,
    username: config.username,
    password: config.password,
    application: options.application ?? 'sessionizer',
    request_timeout: options.requestTimeoutMs ?? 60_000,
    clickhouse_settings: { ...CLIENT_SETTINGS, ...(config.cluster ? CLUSTER_CLIENT_SETTINGS : {}) },
    // Failures reach the caller as rejections and are logged there, in our JSON log; the
    // client's own console logger would add unstructured lines (and duplicate them).
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/** ClickHouse identifiers we build statements from (database names): plain, never quoted. */
export const PLAIN_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
