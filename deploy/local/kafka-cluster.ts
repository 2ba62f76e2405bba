/**
 * A local 3-node KRaft Kafka cluster from the same Maven jars as the single broker (kafka.ts):
 * every node is broker and controller, the three controllers are the quorum, and topics and
 * internal topics are replicated 3 times with min.insync.replicas=2
 * (kafka/cluster-server.properties). Two users, as for the Redis cluster:
 *
 * - `npm run services:up -- kafka-cluster`: started in the background under the checkout's state
 *   directory, found again later, stopped by `services:down -- kafka-cluster`; exports
 *   KAFKA_BROKERS with the three brokers.
 * - tests that kill a broker: `startKafkaCluster` in a temporary directory, `stop()` afterwards.
 *
 * Each node's JVM is kept small (512 MB heap): three of them share the machine with the rest.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { isOurs, readState, say, sleep, spawnDaemon, stopDaemon, waitUntilReady } from './daemon';
import { runCommand } from './exec';
import { brokerAnswers, kafkaDeployDir, newClusterId, renderProperties, requireTool, resolveClasspath } from './kafka';
import { serviceDir } from './paths';
import { pickPort } from './ports';

export interface KafkaClusterNode {
  nodeId: number;
  port: number;
  controllerPort: number;
  pid: number;
  /** The node's properties file: in its command line, so the pid is provably ours. */
  marker: string;
  logFile: string;
}

export interface LocalKafkaCluster {
  nodes: KafkaClusterNode[];
  /** `127.0.0.1:port` of every broker: the value of KAFKA_BROKERS. */
  brokers: string[];
  stop(): Promise<void>;
  /** Sends a signal to one node's JVM (SIGKILL, SIGTERM, SIGSTOP, SIGCONT: fault tests). */
  signal(nodeId: number, signal: NodeJS.Signals): void;
  /** Stops one node cleanly (SIGTERM, waiting for it to exit). */
  stopNode(nodeId: number): Promise<void>;
  /** Starts a stopped or killed node again on its data, and waits until it answers. */
  startNode(nodeId: number): Promise<void>;
}

const READY_TIMEOUT_MS = 180_000;

/** A node's formatted storage and configuration: what starting its JVM needs. */
interface PreparedNode {
  nodeId: number;
  port: number;
  controllerPort: number;
  propertiesFile: string;
  logFile: string;
  nodeDir: string;
}

export async function startKafkaCluster(options: { dir: string; size?: number; basePort?: number }): Promise<LocalKafkaCluster> {
  const size = options.size ?? 3;
  await requireTool('java', ['-version'], 'Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)');
  const classpath = await resolveClasspath(serviceDir('kafka'));
  const taken: number[] = [];
  const ports: Array<{ port: number; controllerPort: number }> = [];
  for (let i = 0; i < size; i += 1) {
    const port = await pickPort((options.basePort ?? 19192) + 2 * i, taken);
    taken.push(port);
    const controllerPort = await pickPort(port + 1, taken);
    taken.push(controllerPort);
    ports.push({ port, controllerPort });
  }
  const voters = ports.map((p, i) => `${i + 1}@127.0.0.1:${p.controllerPort}`).join(',');
  const clusterId = newClusterId();
  const log4j = `-Dlog4j2.configurationFile=${path.join(kafkaDeployDir, 'log4j2.xml')}`;
  const nodes: KafkaClusterNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => stopDaemon(node.pid, node.marker, 10_000)));
  };
  try {
    // Formatted one after the other (each is a short JVM run), started together.
    const prepared: PreparedNode[] = [];
    for (const [i, { port, controllerPort }] of ports.entries()) {
      const nodeDir = path.join(options.dir, `node-${i + 1}`);
      const dataDir = path.join(nodeDir, 'data');
      fs.rmSync(nodeDir, { recursive: true, force: true });
      fs.mkdirSync(dataDir, { recursive: true });
      const propertiesFile = path.join(nodeDir, 'server.properties');
      renderProperties(propertiesFile, { NODE_ID: i + 1, VOTERS: voters, PORT: port, CONTROLLER_PORT: controllerPort, LOG_DIRS: dataDir }, 'cluster-server.properties');
      const logFile = path.join(nodeDir, 'kafka.log');
      fs.writeFileSync(logFile, '');
      await runCommand('java', ['-cp', classpath, log4j, 'kafka.tools.StorageTool', 'format', '--cluster-id', clusterId, '--config', propertiesFile, '--ignore-formatted'], {
        what: `Kafka storage format (node ${i + 1})`,
        logFile,
      });
      prepared.push({ nodeId: i + 1, port, controllerPort, propertiesFile, logFile, nodeDir });
    }
    const jvm = ['-Xms128m', '-Xmx512m', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];
    const spawnNode = (node: PreparedNode): number =>
      spawnDaemon({
        command: 'java',
        args: [...jvm, log4j, `-Dkafka.logs.dir=${node.nodeDir}`, '-cp', classpath, 'kafka.Kafka', node.propertiesFile],
        logFile: node.logFile,
        cwd: node.nodeDir,
      });
    for (const node of prepared) {
      const pid = spawnNode(node);
      nodes.push({ nodeId: node.nodeId, port: node.port, controllerPort: node.controllerPort, pid, marker: node.propertiesFile, logFile: node.logFile });
    }
    const brokers = nodes.map((node) => `127.0.0.1:${node.port}`);
    for (const node of nodes) {
      await waitUntilReady(() => brokerAnswers(`127.0.0.1:${node.port}`), { what: `Kafka node ${node.nodeId}`, ...node, timeoutMs: READY_TIMEOUT_MS });
    }
    await waitForBrokers(brokers, size);
    const nodeOf = (nodeId: number): KafkaClusterNode => {
      const node = nodes.find((n) => n.nodeId === nodeId);
      if (!node) throw new Error(`no Kafka node ${nodeId}`);
      return node;
    };
    return {
      nodes,
      brokers,
      stop,
      signal: (nodeId, signal) => {
        const node = nodeOf(nodeId);
        if (isOurs(node.pid, node.marker)) process.kill(node.pid, signal);
      },
      stopNode: async (nodeId) => {
        const node = nodeOf(nodeId);
        await stopDaemon(node.pid, node.marker, 30_000);
      },
      startNode: async (nodeId) => {
        const node = nodeOf(nodeId);
        const spec = prepared.find((p) => p.nodeId === nodeId) as PreparedNode;
        node.pid = spawnNode(spec);
        await waitUntilReady(() => brokerAnswers(`127.0.0.1:${node.port}`), { what: `Kafka node ${node.nodeId}`, ...node, timeoutMs: READY_TIMEOUT_MS });
        await waitForBrokers(brokers, size);
      },
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/** Until the cluster's metadata lists every broker (they register with the controller quorum). */
async function waitForBrokers(brokers: string[], size: number): Promise<void> {
  const admin = new Kafka({ brokers, clientId: 'services-probe', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { brokers: registered } = await admin.describeCluster().catch(() => ({ brokers: [] as unknown[] }));
      if (registered.length === size) return;
      if (Date.now() > deadline) throw new Error(`Kafka cluster: ${registered.length} of ${size} brokers registered after 60 s`);
      await sleep(250);
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// npm run services:up -- kafka-cluster
// ---------------------------------------------------------------------------------------------

interface ClusterState {
  nodes: KafkaClusterNode[];
  brokers: string[];
  startedAt: string;
}

const stateFile = () => path.join(serviceDir('kafka-cluster'), 'state.json');

export async function ensureKafkaCluster(): Promise<{ env: Record<string, string>; startedNow: boolean }> {
  const existing = readState(stateFile()) as unknown as ClusterState | undefined;
  if (existing?.nodes?.every((node) => isOurs(node.pid, node.marker))) {
    return { env: { KAFKA_BROKERS: existing.brokers.join(',') }, startedNow: false };
  }
  if (existing) await stopKafkaCluster();
  say('starting a 3-node Kafka cluster (KRaft, replication factor 3)');
  const cluster = await startKafkaCluster({ dir: path.join(serviceDir('kafka-cluster'), 'nodes') });
  fs.writeFileSync(stateFile(), `${JSON.stringify({ nodes: cluster.nodes, brokers: cluster.brokers, startedAt: new Date().toISOString() }, null, 2)}\n`);
  say(`Kafka cluster on ${cluster.brokers.join(', ')}`);
  return { env: { KAFKA_BROKERS: cluster.brokers.join(',') }, startedNow: true };
}

export async function stopKafkaCluster(): Promise<boolean> {
  const state = readState(stateFile()) as unknown as ClusterState | undefined;
  if (!state?.nodes) return false;
  const running = state.nodes.some((node) => isOurs(node.pid, node.marker));
  if (running) say(`stopping the Kafka cluster (${state.nodes.length} nodes)`);
  await Promise.all(state.nodes.map((node) => stopDaemon(node.pid, node.marker, 30_000)));
  fs.rmSync(stateFile(), { force: true });
  return running;
}
