/**
 * Finds or starts a Kafka, a Redis and a ClickHouse for the integration tests, per service in
 * this order:
 *   1. an address from the environment (KAFKA_BROKERS, REDIS_URL, CLICKHOUSE_URL [+ _USER/_PASSWORD]),
 *      which must answer (a stale export fails the run at once, with a hint);
 *   2. a container, when a Docker engine is reachable;
 *   3. a local server started by the same code as `npm run services:up` (Java + Maven for Kafka).
 * SESSIONIZER_TEST_SERVICES=docker or =local forces step 2 or 3 for whatever step 1 left open.
 */
import { SERVICE_NAMES, type ServiceName } from '../../deploy/local/service';
import { envOf, servicesDown, servicesUp } from '../../deploy/local/services';
import { dockerAvailable, IMAGES, startContainer, type ContainerService } from './docker';
import { expectAnswers } from './probe';
import { configuredByEnv, SERVICE_ENV } from './service-env';

export type Source = 'environment' | 'docker' | 'local';

export interface ResolvedServices {
  /** Variables to export to the tests (only the ones that were not set already). */
  env: Record<string, string>;
  sources: Record<ServiceName, Source>;
  /** Stops what resolving started; leaves alone what it found running. */
  release(): Promise<void>;
}

type Mode = 'auto' | 'docker' | 'local';

function mode(): Mode {
  const value = (process.env.SESSIONIZER_TEST_SERVICES ?? 'auto').toLowerCase();
  if (value === 'auto' || value === 'docker' || value === 'local') return value;
  throw new Error(`SESSIONIZER_TEST_SERVICES must be auto, docker or local, not '${value}'`);
}

export async function resolveServices(log: (line: string) => void): Promise<ResolvedServices> {
  const sources = {} as Record<ServiceName, Source>;
  const missing: ServiceName[] = [];
  for (const name of SERVICE_NAMES) {
    if (configuredByEnv(name)) {
      sources[name] = 'environment';
      log(`${name}: ${SERVICE_ENV[name].required}=${process.env[SERVICE_ENV[name].required]} (from the environment)`);
    } else {
      missing.push(name);
    }
  }
  const given = SERVICE_NAMES.filter((name) => sources[name] === 'environment');
  await Promise.all(given.map((name) => expectAnswers(name, SERVICE_ENV[name].required)));
  const env: Record<string, string> = {};
  if (missing.length === 0) return { env, sources, release: async () => undefined };

  const wanted = mode();
  const useDocker = wanted === 'docker' || (wanted === 'auto' && (await dockerAvailable()));
  if (wanted === 'docker' && !(await dockerAvailable())) {
    throw new Error('SESSIONIZER_TEST_SERVICES=docker, but testcontainers finds no container runtime');
  }

  const started = Date.now();
  if (useDocker) {
    const results = await Promise.allSettled(missing.map((name) => startContainer(name)));
    const containers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const release = async (): Promise<void> => {
      await Promise.all(containers.map((c) => c.container.stop()));
    };
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await release();
      throw failed.reason;
    }
    for (const service of containers) {
      sources[service.name] = 'docker';
      Object.assign(env, service.env);
      log(`${service.name}: ${IMAGES[service.name]()} container, ${describe(service)}`);
    }
    log(`containers up in ${seconds(started)}`);
    return { env, sources, release };
  }

  const services = await servicesUp(missing);
  Object.assign(env, envOf(services));
  for (const service of services) {
    sources[service.name] = 'local';
    log(`${service.name}: local server, ${SERVICE_ENV[service.name].required}=${service.env[SERVICE_ENV[service.name].required]}` +
      (service.startedNow ? '' : ' (already running)'));
  }
  log(`local services up in ${seconds(started)}`);
  const startedNow = services.filter((s) => s.startedNow).map((s) => s.name);
  const release = async (): Promise<void> => {
    await servicesDown(startedNow);
  };
  return { env, sources, release };
}

function describe(service: ContainerService): string {
  const variable = SERVICE_ENV[service.name].required;
  return `${variable}=${service.env[variable]}`;
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}
