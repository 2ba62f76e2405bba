/**
 * A local Redis Cluster from Debian's `redis-server`: 3 masters and 3 replicas on free loopback
 * ports (each node also needs its cluster bus port, port + 10000), made into one cluster by
 * `redis-cli --cluster create`. Two users:
 *
 * - `npm run services:up -- redis-cluster`: started once in the background under the checkout's
 *   state directory, found again by later calls, stopped by `services:down -- redis-cluster`;
 *   exports REDIS_CLUSTER_NODES.
 * - tests that need a cluster of their own (to kill a master): `startRedisCluster` in a temporary
 *   directory, `stop()` afterwards.
 *
 * No persistence: it is for tests and trying things out. `--cluster-node-timeout` is short by
 * default (2 s), so a killed master's replica is promoted within a few seconds.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isOurs, readState, say, sleep, spawnDaemon, stopDaemon, waitUntilReady } from './daemon';
import { runCommand } from './exec';
import { serviceDir } from './paths';
import { isPortFree, tcpExchange } from './ports';

export interface RedisClusterOptions {
  /** Where nodes keep their config, logs and (empty) data; one sub-directory per node. */
  dir: string;
  masters?: number;
  replicasPerMaster?: number;
  /** `cluster-node-timeout`: how long a master may be silent before its replica takes over. */
  nodeTimeoutMs?: number;
  /** First port to try; the nodes get consecutive ports when free. */
  basePort?: number;
}

export interface RedisClusterNode {
  port: number;
  pid: number;
  /** The node's directory: in its command line, so the pid is provably ours. */
  marker: string;
  logFile: string;
}

export interface LocalRedisCluster {
  nodes: RedisClusterNode[];
  /** `127.0.0.1:port` of every node: the value of REDIS_CLUSTER_NODES. */
  addresses: string[];
  stop(): Promise<void>;
}

const DEFAULT_BASE_PORT = 17001;

export async function startRedisCluster(options: RedisClusterOptions): Promise<LocalRedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const binary = findBinary('redis-server');
  const cli = findBinary('redis-cli');
  const ports = await freeClusterPorts(masters * (1 + replicas), options.basePort ?? DEFAULT_BASE_PORT);
  const nodes: RedisClusterNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => stopDaemon(node.pid, node.marker, 5000)));
  };
  try {
    for (const port of ports) {
      const marker = path.join(options.dir, `node-${port}`);
      fs.mkdirSync(marker, { recursive: true });
      const logFile = path.join(marker, 'redis.log');
      fs.writeFileSync(logFile, '');
      const pid = spawnDaemon({
        command: binary,
        args: [
          '--bind', '127.0.0.1', '--port', String(port), '--dir', marker, '--save', '', '--appendonly', 'no',
          '--daemonize', 'no', '--set-proc-title', 'no',
          '--cluster-enabled', 'yes', '--cluster-config-file', path.join(marker, 'nodes.conf'),
          '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 2000),
          // A replica takes over however long it was cut off (the default refuses after a while).
          '--cluster-replica-validity-factor', '0',
        ],
        logFile,
      });
      nodes.push({ port, pid, marker, logFile });
    }
    for (const node of nodes) {
      await waitUntilReady(() => answers(node.port, 'PING', '+PONG'), { what: `Redis cluster node ${node.port}`, ...node, timeoutMs: 20_000 });
    }
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    await runCommand(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      what: 'redis-cli --cluster create',
      logFile: path.join(options.dir, 'create.log'),
    });
    await waitForClusterReady(nodes, masters, replicas);
    return { nodes, addresses, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/** Every node sees all slots served and every node known; every master has its replicas connected. */
async function waitForClusterReady(nodes: readonly RedisClusterNode[], masters: number, replicas: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const infos = await Promise.all(nodes.map((node) => tcpExchange(node.port, 'CLUSTER INFO\r\n', 2000)));
    const ready = infos.every(
      (info) => info?.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384') && info.includes(`cluster_known_nodes:${nodes.length}`),
    );
    if (ready) {
      const replication = await Promise.all(nodes.map((node) => tcpExchange(node.port, 'INFO replication\r\n', 2000)));
      // `state=online`: the replica finished its initial sync and acknowledges writes (WAIT counts it).
      const synced = replication.filter(
        (info) => info?.includes('role:master') && info.includes(`connected_slaves:${replicas}`) && (info.match(/state=online/g) ?? []).length === replicas,
      ).length;
      if (synced === masters) return;
    }
    if (Date.now() > deadline) throw new Error(`Redis cluster not ready after 30 s:\n${infos.map((i) => i?.split('\r\n').slice(1, 4).join(' ')).join('\n')}`);
    await sleep(200);
  }
}

/** `count` ports, each with its bus port (+10000) free too; consecutive from `base` when possible. */
async function freeClusterPorts(count: number, base: number): Promise<number[]> {
  const ports: number[] = [];
  let candidate = base;
  for (let tries = 0; ports.length < count && tries < 2000; tries += 1) {
    if (candidate + 10_000 >= 65_536) candidate = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await isPortFree(candidate)) && (await isPortFree(candidate + 10_000))) ports.push(candidate);
    candidate += 1;
  }
  if (ports.length < count) throw new Error(`found only ${ports.length} free port pairs for a Redis cluster`);
  return ports;
}

async function answers(port: number, command: string, expected: string): Promise<boolean> {
  return (await tcpExchange(port, `${command}\r\n`, 1000))?.startsWith(expected) ?? false;
}

function findBinary(name: string): string {
  for (const candidate of [`/usr/bin/${name}`, `/usr/local/bin/${name}`]) if (fs.existsSync(candidate)) return candidate;
  throw new Error(`${name} not found: install Debian's redis-server package (apt-get install redis-server), which brings redis-cli`);
}

// ---------------------------------------------------------------------------------------------
// npm run services:up -- redis-cluster
// ---------------------------------------------------------------------------------------------

interface ClusterState {
  nodes: RedisClusterNode[];
  addresses: string[];
  startedAt: string;
}

const stateFile = () => path.join(serviceDir('redis-cluster'), 'state.json');

/** Starts the background cluster, or finds the one started before. */
export async function ensureRedisCluster(): Promise<{ env: Record<string, string>; startedNow: boolean }> {
  const existing = readClusterState();
  if (existing && existing.nodes.every((node) => isOurs(node.pid, node.marker))) {
    return { env: { REDIS_CLUSTER_NODES: existing.addresses.join(',') }, startedNow: false };
  }
  if (existing) await stopRedisCluster(); // some node died: start afresh
  const dir = path.join(serviceDir('redis-cluster'), 'nodes');
  fs.rmSync(dir, { recursive: true, force: true });
  say('starting a Redis cluster: 3 masters + 3 replicas');
  const cluster = await startRedisCluster({ dir });
  fs.writeFileSync(stateFile(), `${JSON.stringify({ nodes: cluster.nodes, addresses: cluster.addresses, startedAt: new Date().toISOString() }, null, 2)}\n`);
  say(`Redis cluster on ${cluster.addresses.join(', ')} (logs: ${dir})`);
  return { env: { REDIS_CLUSTER_NODES: cluster.addresses.join(',') }, startedNow: true };
}

export async function stopRedisCluster(): Promise<boolean> {
  const state = readClusterState();
  if (!state) return false;
  const running = state.nodes.some((node) => isOurs(node.pid, node.marker));
  if (running) say(`stopping the Redis cluster (${state.nodes.length} nodes)`);
  await Promise.all(state.nodes.map((node) => stopDaemon(node.pid, node.marker, 10_000)));
  fs.rmSync(stateFile(), { force: true });
  return running;
}

function readClusterState(): ClusterState | undefined {
  const state = readState(stateFile()) as unknown as ClusterState | undefined;
  return state && Array.isArray(state.nodes) ? state : undefined;
}
