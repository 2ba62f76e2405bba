/**
 * Fixtures for integration tests: where Kafka, Redis and ClickHouse are (global setup found or
 * started them, see docs/services.md), clients for them, and unique names so tests can share
 * servers with each other and with other runs.
 */
export {
  createClickHouseClient,
  createKafka,
  createRedis,
  getClickHouse,
  getKafka,
  getRedisUrl,
  type ClickHouseConnection,
  type KafkaConnection,
} from './services';
export {
  createTestDatabase,
  deleteRedisKeys,
  dropTestDatabase,
  newRedisPrefix,
  uniqueName,
  useTestDatabase,
  type TestDatabase,
} from './isolation';
