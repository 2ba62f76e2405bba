/**
 * `npm run services:up` / `npm run services:down`.
 *
 *   eval "$(npm run -s services:up)"     # start what is missing, export the addresses
 *   eval "$(npm run -s services:down)"   # stop what services:up started, unset the addresses
 *
 * stdout carries only shell `export`/`unset` lines; progress goes to stderr.
 * Optional arguments name a subset of services: `services:up -- kafka clickhouse`.
 * `redis-cluster` (3 masters + 3 replicas, REDIS_CLUSTER_NODES) and `kafka-cluster` (3 KRaft
 * brokers, KAFKA_BROKERS) start only when named: `services:up -- redis-cluster`, or with others:
 * `services:up -- kafka-cluster redis-cluster clickhouse` (not `kafka` and `kafka-cluster` together).
 */
import { SERVICE_NAMES, type ServiceName } from './service';
import { OPTIONAL_SERVICE_NAMES, envOf, servicesDown, servicesUp, type OptionalServiceName } from './services';

const USAGE = `usage: services-cli.ts up|down [${[...SERVICE_NAMES, ...OPTIONAL_SERVICE_NAMES].join('|')} ...]`;

/** Single-quoted for sh, so any value survives `eval`. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const known: readonly string[] = [...SERVICE_NAMES, ...OPTIONAL_SERVICE_NAMES];
  const unknown = rest.filter((name) => !known.includes(name));
  if (unknown.length > 0 || (command !== 'up' && command !== 'down')) throw new Error(USAGE);
  const names: ReadonlyArray<ServiceName | OptionalServiceName> = rest.length > 0 ? (rest as Array<ServiceName | OptionalServiceName>) : SERVICE_NAMES;

  const started = Date.now();
  if (command === 'up') {
    const services = await servicesUp(names);
    for (const [name, value] of Object.entries(envOf(services))) process.stdout.write(`export ${name}=${shellQuote(value)}\n`);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const fresh = services.filter((s) => s.startedNow).map((s) => s.name);
    process.stderr.write(`[services] up in ${seconds}s (started: ${fresh.join(', ') || 'none, all were running'})\n`);
  } else {
    const stopped = await servicesDown(names);
    const variables = {
      kafka: ['KAFKA_BROKERS'],
      redis: ['REDIS_URL'],
      clickhouse: ['CLICKHOUSE_URL', 'CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD'],
      'redis-cluster': ['REDIS_CLUSTER_NODES'],
      'kafka-cluster': ['KAFKA_BROKERS'],
    };
    process.stdout.write(`unset ${names.flatMap((name) => variables[name]).join(' ')}\n`);
    process.stderr.write(`[services] down (stopped: ${stopped.join(', ') || 'nothing was running'})\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[services] ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
