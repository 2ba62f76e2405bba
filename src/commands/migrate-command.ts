/**
 * `sessionizer migrate`: creates the ClickHouse database when missing and applies the schema
 * files not applied yet (src/clickhouse/migrations.ts). Safe to run from every worker at start.
 * Then sets the events table's TTL to EVENTS_TTL_DAYS when it differs (src/clickhouse/events-ttl.ts).
 * Configuration from the environment: CLICKHOUSE_URL, _USER, _PASSWORD, _DATABASE, _CLUSTER,
 * _REPLICATED_PATH, _REPLICA_NAME, and EVENTS_TTL_DAYS.
 */
import { createClickHouseClient } from '../clickhouse/client';
import { applyEventsTtl } from '../clickhouse/events-ttl';
import { migrate, type MigrateResult } from '../clickhouse/migrations';
import { loadConfig, type Config } from '../config';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';

export interface MigrateCommandDeps {
  /** Configuration; read from the environment when absent. */
  config?: Config;
  /** Where progress lines go; stderr by default (stdout stays free for data). */
  log?: (line: string) => void;
  /** Folder of the schema files; the package's schemas/clickhouse by default. */
  schemaDir?: string;
}

export async function runMigrate(deps: MigrateCommandDeps = {}): Promise<MigrateResult> {
  const config = deps.config ?? loadConfig();
  const log = deps.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const { database, cluster, replicatedPath, replicaName } = config.clickhouse;
  const debugLog = createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'migrate' });
  await preflight(config, { clickhouse: true }, debugLog);
  const client = createClickHouseClient(config.clickhouse, { application: 'sessionizer-migrate' });
  try {
    const result = await migrate(client, { database, cluster, replicatedPath, replicaName, schemaDir: deps.schemaDir }, (message) =>
      log(`migrate: ${message}`),
    );
    const where = cluster ? `${database} on cluster ${cluster}` : database;
    const ttl = await applyEventsTtl(client, { database, cluster }, config.eventsTtlDays);
    if (ttl.changed) {
      log(`migrate: events now expire ${config.eventsTtlDays > 0 ? `${config.eventsTtlDays} days after their timestamp` : 'never'} (EVENTS_TTL_DAYS; was: ${ttl.before || 'no TTL'})`);
    }
    log(
      result.applied.length === 0
        ? `migrate: ${where} is up to date (${result.alreadyApplied.length} schema files applied before)`
        : `migrate: ${where}: applied ${result.applied.length} schema files, ${result.alreadyApplied.length} were applied before`,
    );
    return result;
  } finally {
    await client.close();
  }
}
