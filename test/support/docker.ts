/**
 * The services as containers (testcontainers), when a Docker engine is reachable. Official
 * images at pinned versions; Kafka at the same version as the local broker (deploy/local/kafka/pom.xml).
 */
import crypto from 'node:crypto';
import { GenericContainer, Wait, getContainerRuntimeClient, type StartedTestContainer } from 'testcontainers';
import { kafkaVersion } from '../../deploy/local/kafka';
import { pickPort } from '../../deploy/local/ports';
import type { ServiceName } from '../../deploy/local/service';

export const IMAGES = {
  kafka: () => `apache/kafka:${kafkaVersion()}`,
  redis: () => 'redis:8.2',
  clickhouse: () => 'clickhouse/clickhouse-server:26.3',
} satisfies Record<ServiceName, () => string>;

export interface ContainerService {
  name: ServiceName;
  env: Record<string, string>;
  container: StartedTestContainer;
}

/** True when testcontainers finds a container runtime (it answers in milliseconds when none). */
export async function dockerAvailable(): Promise<boolean> {
  try {
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

export function startContainer(name: ServiceName): Promise<ContainerService> {
  if (name === 'kafka') return startKafka();
  if (name === 'redis') return startRedis();
  return startClickHouse();
}

/**
 * Kafka has to advertise the address clients reach it at, which for a container is the mapped
 * port. So the host port is chosen first and bound 1:1 to a listener on the same port inside
 * the container; a second listener (BROKER, 9092) serves the broker's own connections.
 */
async function startKafka(): Promise<ContainerService> {
  const runtime = await getContainerRuntimeClient();
  const host = runtime.info.containerRuntime.host;
  const port = await pickPort(29092);
  const container = await new GenericContainer(IMAGES.kafka())
    .withEnvironment({
      CLUSTER_ID: crypto.randomBytes(16).toString('base64url'),
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_LISTENERS: `PLAINTEXT://0.0.0.0:${port},BROKER://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093`,
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://${host}:${port},BROKER://localhost:9092`,
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'BROKER',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      // Same test tuning as deploy/local/kafka/server.properties.
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'true',
      KAFKA_NUM_PARTITIONS: '4',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '4',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
    })
    .withExposedPorts({ container: port, host: port })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(120_000)
    .start();
  return { name: 'kafka', env: { KAFKA_BROKERS: `${host}:${port}` }, container };
}

async function startRedis(): Promise<ContainerService> {
  const container = await new GenericContainer(IMAGES.redis())
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
    .withExposedPorts(6379)
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start();
  return { name: 'redis', env: { REDIS_URL: `redis://${container.getHost()}:${container.getMappedPort(6379)}` }, container };
}

async function startClickHouse(): Promise<ContainerService> {
  // Recent images refuse network logins of a password-less default user: create one.
  const username = 'sessionizer';
  const password = 'sessionizer';
  const container = await new GenericContainer(IMAGES.clickhouse())
    .withEnvironment({ CLICKHOUSE_USER: username, CLICKHOUSE_PASSWORD: password, CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: '1' })
    .withExposedPorts(8123)
    .withWaitStrategy(Wait.forHttp('/ping', 8123).forStatusCode(200))
    .withStartupTimeout(120_000)
    .start();
  return {
    name: 'clickhouse',
    env: {
      CLICKHOUSE_URL: `http://${container.getHost()}:${container.getMappedPort(8123)}`,
      CLICKHOUSE_USER: username,
      CLICKHOUSE_PASSWORD: password,
    },
    container,
  };
}
