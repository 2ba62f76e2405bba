/**
 * `npm run services:up` / `npm run services:down`.
 *
 *   eval "$(npm run -s services:up)"     # start what is missing, export the addresses
 *   eval "$(npm run -s services:down)"   # stop what services:up started, unset the addresses
 *
 * stdout carries only shell `export`/`unset` lines; progress goes to stderr.
 * Optional arguments name a subset of services: `services:up -- kafka clickhouse`.
 */
import { SERVICE_NAMES, type ServiceName } from './service';
import { envOf, servicesDown, servicesUp } from './services';

const USAGE = `usage: services-cli.ts up|down [${SERVICE_NAMES.join('|')} ...]`;

/** Single-quoted for sh, so any value survives `eval`. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const unknown = rest.filter((name) => !(SERVICE_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0 || (command !== 'up' && command !== 'down')) throw new Error(USAGE);
  const names = rest.length > 0 ? (rest as ServiceName[]) : SERVICE_NAMES;

  const started = Date.now();
  if (command === 'up') {
    const services = await servicesUp(names);
    for (const [name, value] of Object.entries(envOf(services))) process.stdout.write(`export ${name}=${shellQuote(value)}\n`);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const fresh = services.filter((s) => s.startedNow).map((s) => s.name);
    process.stderr.write(`[services] up in ${seconds}s (started: ${fresh.join(', ') || 'none, all were running'})\n`);
  } else {
    const stopped = await servicesDown(names);
    const variables = { kafka: ['KAFKA_BROKERS'], redis: ['REDIS_URL'], clickhouse: ['CLICKHOUSE_URL', 'CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD'] };
    process.stdout.write(`unset ${names.flatMap((name) => variables[name]).join(' ')}\n`);
    process.stderr.write(`[services] down (stopped: ${stopped.join(', ') || 'nothing was running'})\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[services] ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
