/**
 * deploy/compose.clickhouse-cluster.yaml and deploy/clickhouse-cluster/*.xml, checked without a
 * container engine: merged over compose.yaml as `docker compose -f … -f …` merges, it runs 2
 * shards x 2 replicas and Keeper; the servers' remote_servers, macros and Keeper settings agree
 * with each other, with the compose services and with what migrate and the workers are told
 * (CLICKHOUSE_CLUSTER, the default Keeper path and replica name); secrets stay out of the files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { parseDocument } from 'yaml';
import { DEFAULT_REPLICATED_PATH, DEFAULT_REPLICA_NAME } from '../../../src/clickhouse/cluster-schema';
import { asEnv, checkEnv } from './deploy-env';
import { REPO } from './dockerfile-model';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const DEPLOY = join(REPO, 'deploy');
const load = (file: string) => parseDocument(readFileSync(join(DEPLOY, file), 'utf8'), { merge: true });
const BASE_DOC = load('compose.yaml');
const OVERRIDE_TEXT = readFileSync(join(DEPLOY, 'compose.clickhouse-cluster.yaml'), 'utf8');
const OVERRIDE_DOC = load('compose.clickhouse-cluster.yaml');
const BASE = BASE_DOC.toJS() as Obj;
const OVERRIDE = OVERRIDE_DOC.toJS() as Obj;

/** Compose's merge of a service: maps merge key by key, volumes by target, other lists append. */
function mergeService(base: Obj = {}, over: Obj = {}): Obj {
  const out: Obj = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    if (key === 'volumes') {
      const byTarget = new Map<string, string>();
      for (const v of [...((current ?? []) as string[]), ...(value as string[])]) byTarget.set(String(v).split(':')[1] as string, v);
      out[key] = [...byTarget.values()];
    } else if (Array.isArray(current) && Array.isArray(value)) {
      out[key] = [...new Set([...current, ...value])];
    } else if (current && typeof current === 'object' && value && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = { ...current, ...value };
    } else {
      out[key] = value;
    }
  }
  return out;
}

const SERVICES: Record<string, Obj> = Object.fromEntries(
  [...new Set([...Object.keys(BASE.services), ...Object.keys(OVERRIDE.services)])].map((name) => [
    name,
    mergeService(BASE.services[name] as Obj, OVERRIDE.services[name] as Obj),
  ]),
);
const SECRETS = { ...BASE.secrets, ...OVERRIDE.secrets } as Obj;
const VOLUMES = { ...BASE.volumes, ...OVERRIDE.volumes } as Obj;

const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (name) => ['shard', 'replica', 'node', 'server'].includes(name) });
const parseXml = (file: string): Obj => (xml.parse(readFileSync(join(DEPLOY, 'clickhouse-cluster', file), 'utf8')) as Obj).clickhouse as Obj;

/** Host file → container path of a service's bind mounts. */
function mounts(service: Obj): Map<string, string> {
  return new Map(
    ((service.volumes ?? []) as string[])
      .filter((v) => v.startsWith('./'))
      .map((v) => {
        const [host, container] = v.split(':') as [string, string];
        return [container, resolve(DEPLOY, host)];
      }),
  );
}

const NODES = Object.entries(SERVICES).filter(([, s]) => String(s.image).startsWith('clickhouse/clickhouse-server') && [...mounts(s).keys()].some((c) => c.includes('config.d/macros.xml')));
const CLUSTER = parseXml('cluster.xml');
const KEEPER = parseXml('keeper.xml');

describe('deploy/compose.clickhouse-cluster.yaml', () => {
  it('parses, and adds Keeper and three servers to compose.yaml', () => {
    expect(OVERRIDE_DOC.errors).toEqual([]);
    expect(OVERRIDE_DOC.warnings).toEqual([]);
    expect(OVERRIDE.name).toBe(BASE.name);
    const added = Object.keys(OVERRIDE.services).filter((name) => !BASE.services[name]).sort();
    expect(added).toEqual(['clickhouse-keeper', 'clickhouse-s1r2', 'clickhouse-s2r1', 'clickhouse-s2r2']);
    expect(NODES.map(([name]) => name).sort()).toEqual(['clickhouse', 'clickhouse-s1r2', 'clickhouse-s2r1', 'clickhouse-s2r2']);
  });

  it('runs the ClickHouse version of compose.yaml everywhere, Keeper included', () => {
    for (const name of ['clickhouse-keeper', ...NODES.map(([n]) => n)]) expect({ name, image: SERVICES[name]?.image }).toEqual({ name, image: BASE.services.clickhouse.image });
  });

  it('uses no compose interpolation: every $ is escaped as $$', () => {
    const withoutComments = OVERRIDE_TEXT.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');
    expect(withoutComments.replace(/\$\$/g, '')).not.toContain('$');
  });

  it('mounts config files that exist, and a data volume per server', () => {
    for (const [name, service] of Object.entries(SERVICES)) {
      for (const [container, host] of mounts(service)) expect({ name, container, exists: existsSync(host) }).toEqual({ name, container, exists: true });
    }
    const data = NODES.map(([, s]) => ((s.volumes as string[]).find((v) => v.endsWith(':/var/lib/clickhouse')) ?? '').split(':')[0] as string);
    expect(new Set(data).size).toBe(4);
    for (const volume of data) expect(Object.keys(VOLUMES)).toContain(volume);
  });

  it('describes 2 shards x 2 replicas of the compose servers, each shard replicating internally', () => {
    const clusters = Object.keys(CLUSTER.remote_servers);
    expect(clusters).toHaveLength(1);
    const shards = (CLUSTER.remote_servers[clusters[0] as string].shard as Obj[]);
    expect(shards).toHaveLength(2);
    for (const shard of shards) {
      expect(shard.internal_replication).toBe(true);
      expect(shard.replica).toHaveLength(2);
      for (const replica of shard.replica as Obj[]) {
        expect(NODES.map(([name]) => name)).toContain(replica.host);
        expect(replica.port).toBe(9000);
      }
    }
    const hosts = shards.flatMap((s) => (s.replica as Obj[]).map((r) => r.host as string));
    expect(new Set(hosts).size).toBe(4);
  });

  it("gives each server macros that match its place in remote_servers, with {shard} and {replica} for the default Keeper path", () => {
    const clusterName = Object.keys(CLUSTER.remote_servers)[0] as string;
    const shards = CLUSTER.remote_servers[clusterName].shard as Obj[];
    const seen = new Set<string>();
    for (const [name, service] of NODES) {
      expect(mounts(service).get('/etc/clickhouse-server/config.d/cluster.xml')).toBe(join(DEPLOY, 'clickhouse-cluster', 'cluster.xml'));
      const macrosFile = mounts(service).get('/etc/clickhouse-server/config.d/macros.xml') as string;
      const macros = (xml.parse(readFileSync(macrosFile, 'utf8')) as Obj).clickhouse.macros as Obj;
      const shardIndex = shards.findIndex((s) => (s.replica as Obj[]).some((r) => r.host === name));
      expect({ name, shard: Number(macros.shard) }).toEqual({ name, shard: shardIndex + 1 });
      expect(macros.cluster).toBe(clusterName);
      seen.add(`${macros.shard}/${macros.replica}`);
      seen.add(String(macros.replica));
      // Every macro the default Keeper path and replica name use is defined.
      for (const [, macro] of `${DEFAULT_REPLICATED_PATH} ${DEFAULT_REPLICA_NAME}`.matchAll(/\{(\w+)\}/g)) {
        if (macro === 'database' || macro === 'table') continue; // filled by migrate
        expect({ name, macro, defined: macros[macro as string] !== undefined }).toEqual({ name, macro, defined: true });
      }
    }
    expect(seen.size).toBe(8); // (shard, replica) pairs and replica names alike are unique
  });

  it('points every server at the Keeper service, whose port, raft host and readiness check agree', () => {
    const node = (CLUSTER.zookeeper.node as Obj[])[0] as Obj;
    expect(node.host).toBe('clickhouse-keeper');
    expect(node.port).toBe(KEEPER.keeper_server.tcp_port);
    const raft = KEEPER.keeper_server.raft_configuration.server as Obj[];
    expect(raft.map((s) => s.hostname)).toEqual(['clickhouse-keeper']);
    expect(raft[0]?.id).toBe(KEEPER.keeper_server.server_id);
    const keeper = SERVICES['clickhouse-keeper'] as Obj;
    expect(keeper.entrypoint).toEqual(['/usr/bin/clickhouse', 'keeper', '--config-file=/etc/clickhouse-keeper/keeper.xml']);
    expect(mounts(keeper).get('/etc/clickhouse-keeper/keeper.xml')).toBe(join(DEPLOY, 'clickhouse-cluster', 'keeper.xml'));
    const control = KEEPER.keeper_server.http_control;
    expect(keeper.healthcheck.test.join(' ')).toContain(`http://127.0.0.1:${control.port}${control.readiness.endpoint}`);
    for (const [name, service] of NODES) expect({ name, dep: service.depends_on?.['clickhouse-keeper'] }).toEqual({ name, dep: { condition: 'service_healthy' } });
  });

  it('keeps the inter-server secret out of the files: read from a mounted secret into the variable cluster.xml names', () => {
    const clusterName = Object.keys(CLUSTER.remote_servers)[0] as string;
    const variable = CLUSTER.remote_servers[clusterName].secret['@from_env'] as string;
    expect(variable).toMatch(/^[A-Z_]+$/);
    for (const [name, service] of NODES) {
      const script = (service.entrypoint as string[]).join(' ');
      const secret = new RegExp(`export ${variable}="\\$\\$\\(cat /run/secrets/(\\w+)\\)" && exec /entrypoint.sh`).exec(script)?.[1];
      expect({ name, secret }).toEqual({ name, secret: expect.any(String) });
      expect(service.secrets).toContain(secret);
      expect(Object.keys(SECRETS)).toContain(secret);
      expect(service.environment.CLICKHOUSE_PASSWORD_FILE).toBe('/run/secrets/clickhouse_password');
      expect(service.environment.CLICKHOUSE_USER).toBe(SERVICES.clickhouse?.environment.CLICKHOUSE_USER);
    }
  });

  it('tells migrate and the workers the cluster name, with settings that load; migrate waits for every server', () => {
    const clusterName = Object.keys(CLUSTER.remote_servers)[0] as string;
    for (const name of ['migrate', 'worker']) {
      const { problems, config } = checkEnv(asEnv(SERVICES[name]?.environment as Obj), ['CLICKHOUSE_URL']);
      expect({ name, problems }).toEqual({ name, problems: [] });
      expect(config?.clickhouse.cluster).toBe(clusterName);
      expect(new URL(config?.clickhouse.url ?? '').hostname).toBe('clickhouse');
    }
    const migrate = SERVICES.migrate as Obj;
    for (const [name] of NODES) expect({ name, dep: migrate.depends_on[name] }).toEqual({ name, dep: { condition: 'service_healthy' } });
    for (const [name, service] of Object.entries(SERVICES)) {
      for (const [dependency, { condition }] of Object.entries((service.depends_on ?? {}) as Record<string, { condition?: string }>)) {
        if (condition === 'service_healthy') expect({ name, dependency, healthcheck: Boolean(SERVICES[dependency]?.healthcheck) }).toEqual({ name, dependency, healthcheck: true });
      }
    }
  });
});
