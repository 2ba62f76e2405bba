/**
 * deploy/compose.yaml, checked without a container engine: images pinned, the sessionizer
 * services' environment made of real settings (configSchema) that load, passwords as mounted
 * secrets, dependencies and health checks that make `docker compose up` start in order, ports
 * that do not collide, and the worker pool / load generator as the brief of issue 6 asks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { buildProgram } from '../../../src/cli';
import { checkEnv, asEnv, STAND_IN_SECRET } from './deploy-env';
import { REPO } from './dockerfile-model';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const TEXT = readFileSync(join(REPO, 'deploy', 'compose.yaml'), 'utf8');
const DOC = parseDocument(TEXT, { merge: true });
const COMPOSE = DOC.toJS() as Obj;
const SERVICES = COMPOSE.services as Record<string, Obj>;
const PACKAGE = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
const SESSIONIZER = Object.entries(SERVICES).filter(([, s]) => String(s.image).startsWith('sessionizer:'));
const env = (name: string) => asEnv(SERVICES[name]?.environment as Record<string, unknown>);

/** `127.0.0.1:9464-9466:9464` → host ports 9464..9466, container 9464. */
function ports(service: Obj): Array<{ ip: string; host: number[]; container: number }> {
  return ((service.ports ?? []) as string[]).map((spec) => {
    const match = /^(?:([\d.]+):)?(\d+)(?:-(\d+))?:(\d+)$/.exec(String(spec));
    if (!match) throw new Error(`unexpected port spec ${spec}`);
    const from = Number(match[2]);
    const to = Number(match[3] ?? match[2]);
    return { ip: match[1] ?? '', host: Array.from({ length: to - from + 1 }, (_, i) => from + i), container: Number(match[4]) };
  });
}

describe('deploy/compose.yaml', () => {
  it('parses as YAML without errors or warnings', () => {
    expect(DOC.errors).toEqual([]);
    expect(DOC.warnings).toEqual([]);
    expect(Object.keys(SERVICES).sort()).toEqual(['clickhouse', 'collector', 'dashboard', 'grafana', 'kafka', 'kafka-init', 'loadgen', 'migrate', 'prometheus', 'redis', 'worker'].sort());
  });

  it('pins every image: an explicit version tag, never latest; sessionizer at the package version, built from the Dockerfile', () => {
    for (const [name, service] of Object.entries(SERVICES)) {
      expect({ name, image: service.image }).toEqual({ name, image: expect.stringMatching(/^[a-z0-9./-]+:v?\d+\.\d+(\.\d+)*(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/) });
    }
    for (const [, service] of SESSIONIZER) {
      expect(service.image).toBe(`sessionizer:${PACKAGE.version}`);
      expect(service.build).toEqual({ context: '..', dockerfile: 'Dockerfile' });
      expect(service.init).toBe(true);
    }
  });

  it('uses no compose interpolation: every $ is escaped as $$ (passwords come from secrets, not ${VARS})', () => {
    const withoutComments = TEXT.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');
    expect(withoutComments.replace(/\$\$/g, '')).not.toContain('$');
  });

  it("gives the sessionizer services real settings that load, passwords only as /run/secrets files they mount", () => {
    const required: Record<string, string[]> = {
      worker: ['KAFKA_BROKERS', 'KAFKA_TOPICS', 'KAFKA_GROUP_ID', 'REDIS_URL', 'REDIS_PASSWORD', 'CLICKHOUSE_URL', 'CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD', 'CLICKHOUSE_DATABASE'],
      migrate: ['CLICKHOUSE_URL', 'CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD', 'CLICKHOUSE_DATABASE'],
      loadgen: ['KAFKA_BROKERS', 'KAFKA_TOPICS'],
      collector: ['KAFKA_BROKERS', 'KAFKA_TOPICS', 'REDIS_URL', 'REDIS_PASSWORD', 'COLLECT_WRITE_KEYS', 'COLLECT_PORT'],
      dashboard: ['CLICKHOUSE_URL', 'CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD', 'CLICKHOUSE_DATABASE', 'DASHBOARD_CONFIG', 'DASHBOARD_SESSION_SECRET', 'DASHBOARD_PORT'],
    };
    expect(SESSIONIZER.map(([name]) => name).sort()).toEqual(Object.keys(required).sort());
    for (const [name, service] of SESSIONIZER) {
      const values = env(name);
      expect({ name, problems: checkEnv(values, required[name] ?? []).problems }).toEqual({ name, problems: [] });
      for (const [key, path] of Object.entries(values).filter(([k]) => k.endsWith('_FILE'))) {
        const secret = /^\/run\/secrets\/([a-z_]+)$/.exec(path)?.[1];
        expect({ key, secret }).toEqual({ key, secret: expect.any(String) });
        expect(service.secrets).toContain(secret);
        expect(Object.keys(COMPOSE.secrets)).toContain(secret);
      }
    }
  });

  it('points the clients at the compose services and their ports', () => {
    const worker = checkEnv(env('worker'), []).config;
    expect(worker?.kafka.brokers).toEqual(['kafka:9092']);
    expect(String(SERVICES.kafka?.environment.KAFKA_ADVERTISED_LISTENERS)).toContain('PLAINTEXT://kafka:9092');
    expect(new URL(worker?.redis.url ?? '').host).toBe('redis:6379');
    expect(new URL(worker?.clickhouse.url ?? '').host).toBe('clickhouse:8123');
    expect(worker?.clickhouse.username).toBe(SERVICES.clickhouse?.environment.CLICKHOUSE_USER);
    expect(env('migrate').CLICKHOUSE_DATABASE).toBe(env('worker').CLICKHOUSE_DATABASE);
    expect(env('loadgen').KAFKA_TOPICS).toBe(env('worker').KAFKA_TOPICS);
    // kafka-init creates the worker's topic and dead-letter topic.
    const init = (SERVICES['kafka-init']?.command as string[]).join(' ');
    expect(init).toContain(`for topic in ${env('worker').KAFKA_TOPICS} ${env('worker').KAFKA_DEAD_LETTER_TOPIC}`);
  });

  it('runs three workers after migrate and topic creation complete, with a stop grace longer than the shutdown timeout', () => {
    const worker = SERVICES.worker as Obj;
    expect(worker.command).toEqual(['worker']);
    expect(worker.deploy.replicas).toBe(3);
    expect(worker.depends_on.migrate).toEqual({ condition: 'service_completed_successfully' });
    expect(worker.depends_on['kafka-init']).toEqual({ condition: 'service_completed_successfully' });
    expect(Number(/^(\d+)s$/.exec(worker.stop_grace_period)?.[1])).toBeGreaterThan(Number(env('worker').SHUTDOWN_TIMEOUT_SECONDS));
    expect(SERVICES.migrate?.command).toEqual(['migrate']);
    expect(SERVICES.migrate?.restart).toBe('no');
  });

  it('waits only on dependencies that can report it: healthy ones have a health check, completed ones are one-shot', () => {
    for (const [name, service] of Object.entries(SERVICES)) {
      const dependsOn = Array.isArray(service.depends_on) ? Object.fromEntries((service.depends_on as string[]).map((d) => [d, {}])) : (service.depends_on ?? {});
      for (const [dependency, { condition }] of Object.entries(dependsOn as Record<string, { condition?: string }>)) {
        const target = SERVICES[dependency];
        expect({ name, dependency, exists: Boolean(target) }).toEqual({ name, dependency, exists: true });
        if (condition === 'service_healthy') expect({ dependency, healthcheck: Boolean(target?.healthcheck) }).toEqual({ dependency, healthcheck: true });
        if (condition === 'service_completed_successfully') expect(target?.restart).toBe('no');
      }
    }
  });

  it('keeps Redis durable (AOF, a volume) and never evicting session state', () => {
    const redis = SERVICES.redis as Obj;
    const command = (redis.command as string[]).join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(redis.volumes).toContain('redis-data:/data');
    expect(Object.keys(COMPOSE.volumes)).toContain('redis-data');
    expect(SERVICES.clickhouse?.volumes).toContain('clickhouse-data:/var/lib/clickhouse');
  });

  it("keeps Redis' password off every command line: configuration on stdin, REDISCLI_AUTH for the health check", () => {
    const redis = SERVICES.redis as Obj;
    const command = (redis.command as string[]).join(' ');
    expect(command).toMatch(/exec redis-server - .*<<EOF\nrequirepass \$\$\(cat \/run\/secrets\/redis_password\)\nEOF/);
    expect(command).not.toMatch(/--requirepass|\s-a\s/);
    const check = (redis.healthcheck.test as string[]).join(' ');
    expect(check).toContain('REDISCLI_AUTH=');
    expect(check).not.toMatch(/\s-a\s|--pass/);
  });

  it('pins the Grafana plugin and takes the admin password from a secret', () => {
    const grafana = SERVICES.grafana as Obj;
    expect(grafana.environment.GF_INSTALL_PLUGINS).toBeUndefined();
    for (const plugin of String(grafana.environment.GF_PLUGINS_PREINSTALL_SYNC).split(',')) expect(plugin).toMatch(/^[a-z0-9-]+@\d+\.\d+\.\d+$/);
    expect(grafana.environment.GF_PLUGINS_PREINSTALL_SYNC).toContain('grafana-clickhouse-datasource@');
    expect(grafana.environment.GF_SECURITY_ADMIN_PASSWORD).toBeUndefined();
    expect(grafana.environment.GF_SECURITY_ADMIN_PASSWORD__FILE).toBe('/run/secrets/grafana_admin_password');
    expect(grafana.secrets).toContain('grafana_admin_password');
    expect(COMPOSE.secrets.grafana_admin_password).toEqual({ environment: 'GRAFANA_ADMIN_PASSWORD' });
  });

  it('gives each worker a memory limit above the measured peak (479 MB with 12 partitions)', () => {
    const limit = String((SERVICES.worker as Obj).deploy.resources.limits.memory);
    expect(Number(/^(\d+)M$/.exec(limit)?.[1])).toBeGreaterThanOrEqual(600);
  });

  it('publishes ports on loopback only, without collisions, one per worker replica on HTTP_PORT', () => {
    const used = new Map<number, string>();
    for (const [name, service] of Object.entries(SERVICES)) {
      for (const { ip, host } of ports(service)) {
        expect({ name, ip }).toEqual({ name, ip: '127.0.0.1' });
        for (const port of host) {
          expect({ port, owner: used.get(port) ?? name }).toEqual({ port, owner: name });
          used.set(port, name);
        }
      }
    }
    const worker = ports(SERVICES.worker as Obj);
    expect(worker).toHaveLength(1);
    expect(worker[0]?.container).toBe(Number(env('worker').HTTP_PORT));
    expect(worker[0]?.host.length).toBe((SERVICES.worker as Obj).deploy.replicas);
  });

  it('runs the collector on the workers’ topic and Redis, write keys from a secret, its API and metrics published', () => {
    const collector = SERVICES.collector as Obj;
    expect(collector.command).toEqual(['collect']);
    const config = checkEnv(env('collector'), []).config;
    expect(config?.collect.topic).toBe(env('worker').KAFKA_TOPICS);
    expect(env('collector').REDIS_URL).toBe(env('worker').REDIS_URL);
    expect(env('collector').COLLECT_WRITE_KEYS_FILE).toBe('/run/secrets/collect_write_keys');
    expect(ports(collector).map((p) => p.container).sort()).toEqual([Number(env('collector').COLLECT_PORT), Number(env('collector').HTTP_PORT)].sort());
    expect(collector.depends_on['kafka-init']).toEqual({ condition: 'service_completed_successfully' });
    expect(Number(/^(\d+)s$/.exec(collector.stop_grace_period)?.[1])).toBeGreaterThan(Number(env('collector').SHUTDOWN_TIMEOUT_SECONDS));
  });

  it('runs the dashboard (behind its profile) on the workers’ ClickHouse database, its access file and session secret as secrets, its pages and health published', () => {
    const dashboard = SERVICES.dashboard as Obj;
    expect(dashboard.profiles).toEqual(['dashboard']);
    expect(dashboard.command).toEqual(['dashboard']);
    const config = checkEnv(env('dashboard'), []).config;
    expect(config?.clickhouse.database).toBe(env('worker').CLICKHOUSE_DATABASE);
    expect(config?.clickhouse.url).toBe(env('worker').CLICKHOUSE_URL);
    expect(config?.dashboard.configPath).toBe('/run/secrets/dashboard_config');
    expect(config?.dashboard.sessionSecret).toBe(STAND_IN_SECRET);
    expect(dashboard.secrets).toEqual(expect.arrayContaining(['clickhouse_password', 'dashboard_config', 'dashboard_session_secret']));
    expect(COMPOSE.secrets.dashboard_config).toEqual({ file: './dashboard.yaml' });
    expect(COMPOSE.secrets.dashboard_session_secret).toEqual({ environment: 'DASHBOARD_SESSION_SECRET' });
    expect(ports(dashboard).map((p) => p.container).sort()).toEqual([Number(env('dashboard').DASHBOARD_PORT), Number(env('dashboard').HTTP_PORT)].sort());
    expect(dashboard.depends_on.migrate).toEqual({ condition: 'service_completed_successfully' });
    expect(readFileSync(join(REPO, '.gitignore'), 'utf8')).toContain('deploy/dashboard.yaml');
  });

  it('keeps the load generator behind the `load` profile, with options the CLI accepts', () => {
    const loadgen = SERVICES.loadgen as Obj;
    expect(loadgen.profiles).toEqual(['load']);
    const [command, ...args] = loadgen.command as string[];
    expect(command).toBe('loadgen');
    const sub = buildProgram().commands.find((c) => c.name() === 'loadgen');
    expect(sub).toBeDefined();
    const { operands, unknown } = sub?.parseOptions(args) ?? { operands: [''], unknown: [''] };
    expect({ operands, unknown }).toEqual({ operands: [], unknown: [] });
    expect(sub?.opts()).toMatchObject({ users: 20000, rate: 500, duration: 600 });
  });

  it('scrapes every worker replica on HTTP_PORT and provisions the dashboards of deploy/grafana', () => {
    const prometheus = String(COMPOSE.configs.prometheus.content);
    expect(prometheus).toContain('names: [worker, collector]');
    expect(prometheus).toContain(`port: ${env('worker').HTTP_PORT}`);
    const grafana = SERVICES.grafana as Obj;
    const mount = (grafana.volumes as string[]).find((v) => v.startsWith('./grafana:'));
    expect(mount).toBeDefined();
    const path = (mount as string).split(':')[1] as string;
    expect(String(COMPOSE.configs['grafana-dashboards'].content)).toContain(`path: ${path}`);
    expect(String(COMPOSE.configs['grafana-datasources'].content)).toContain('$__file{/run/secrets/clickhouse_password}');
    expect(grafana.secrets).toContain('clickhouse_password');
  });
});
