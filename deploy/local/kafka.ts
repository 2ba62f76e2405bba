/**
 * A single-node KRaft Kafka broker without Docker: the Apache Kafka jars from Maven Central (via
 * Maven, cached in ~/.m2), storage formatted, `kafka.Kafka` started in the background.
 *
 * The version lives in deploy/local/kafka/pom.xml. Each start begins from an empty data
 * directory: the broker is disposable, and recovering old logs would only slow start-up.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { isOurs, readState, say, spawnDaemon, stopAndRethrow, stopDaemon, waitUntilReady, writeState } from './daemon';
import { commandSucceeds, runCommand } from './exec';
import { deployDir, repoRoot, serviceDir } from './paths';
import { pickPort } from './ports';
import type { LocalService } from './service';

const PREFERRED_PORT = 19092;
const PREFERRED_CONTROLLER_PORT = 19093;
const READY_TIMEOUT_MS = 120_000;
export const kafkaDeployDir = path.join(deployDir, 'kafka');
const pomFile = path.join(kafkaDeployDir, 'pom.xml');

/** The Kafka version pinned in the pom (also the apache/kafka image tag on the Docker path). */
export function kafkaVersion(): string {
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(fs.readFileSync(pomFile, 'utf8'));
  if (!match?.[1]) throw new Error(`no <kafka.version> in ${pomFile}`);
  return match[1];
}

export async function ensureKafka(): Promise<LocalService> {
  const dir = serviceDir('kafka');
  const stateFile = path.join(dir, 'state.json');
  const propertiesFile = path.join(dir, 'server.properties');
  const existing = readState(stateFile);
  if (existing && isOurs(existing.pid, existing.marker)) {
    const brokers = `127.0.0.1:${existing.port}`;
    // A broker that is still starting (another `services:up` a moment ago) is waited for too.
    await waitUntilReady(() => brokerAnswers(brokers), { what: 'Kafka', ...existing, timeoutMs: READY_TIMEOUT_MS });
    return { name: 'kafka', env: { KAFKA_BROKERS: brokers }, startedNow: false };
  }

  await requireTool('java', ['-version'], 'Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)');
  const classpath = await resolveClasspath(dir);
  const port = await pickPort(PREFERRED_PORT);
  const controllerPort = await pickPort(PREFERRED_CONTROLLER_PORT, [port]);
  const dataDir = path.join(dir, 'data');
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  renderProperties(propertiesFile, { PORT: port, CONTROLLER_PORT: controllerPort, LOG_DIRS: dataDir });

  const log4j = `-Dlog4j2.configurationFile=${path.join(kafkaDeployDir, 'log4j2.xml')}`;
  const logFile = path.join(dir, 'kafka.log');
  fs.writeFileSync(logFile, ''); // one log per start
  const clusterId = newClusterId();
  // kafka.tools.StorageTool is the formatter in 3.x and still in 4.x (kafka_2.13 jar).
  await runCommand('java', ['-cp', classpath, log4j, '-Dkafka.log.level=WARN', 'kafka.tools.StorageTool', 'format',
    '--cluster-id', clusterId, '--config', propertiesFile, '--ignore-formatted'], { what: 'Kafka storage format', logFile });

  say(`starting Kafka ${kafkaVersion()} on 127.0.0.1:${port} (log: ${path.relative(repoRoot, logFile)})`);
  const jvm = ['-Xms256m', '-Xmx1g', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true'];
  const pid = spawnDaemon({
    command: 'java',
    args: [...jvm, log4j, `-Dkafka.logs.dir=${dir}`, '-cp', classpath, 'kafka.Kafka', propertiesFile],
    logFile,
    cwd: dir,
  });
  const state = { pid, marker: propertiesFile, port, logFile, startedAt: new Date().toISOString(), extra: { controllerPort } };
  writeState(stateFile, state);
  const brokers = `127.0.0.1:${port}`;
  await waitUntilReady(() => brokerAnswers(brokers), { what: 'Kafka', ...state, timeoutMs: READY_TIMEOUT_MS })
    .catch(stopAndRethrow(stopKafka));
  return { name: 'kafka', env: { KAFKA_BROKERS: brokers }, startedNow: true };
}

export async function stopKafka(): Promise<boolean> {
  const stateFile = path.join(serviceDir('kafka'), 'state.json');
  const state = readState(stateFile);
  if (!state) return false;
  const running = isOurs(state.pid, state.marker);
  if (running) say(`stopping Kafka (pid ${state.pid})`);
  await stopDaemon(state.pid, state.marker);
  fs.rmSync(stateFile, { force: true });
  return running;
}

/** Ready means a client can talk to it: metadata answered through the normal client. */
export async function brokerAnswers(brokers: string): Promise<boolean> {
  const admin = new Kafka({
    brokers: [brokers],
    clientId: 'services-probe',
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * The broker's classpath: the jars Maven resolved into ~/.m2. Remembered next to the state (keyed
 * by the pom's content), so only the first start in a checkout runs Maven at all.
 */
export async function resolveClasspath(dir: string): Promise<string> {
  const pom = fs.readFileSync(pomFile);
  const key = crypto.createHash('sha256').update(pom).digest('hex').slice(0, 12);
  const cacheFile = path.join(dir, `classpath-${key}.txt`);
  const cached = fs.existsSync(cacheFile) ? fs.readFileSync(cacheFile, 'utf8').trim() : '';
  if (cached && cached.split(path.delimiter).every((jar) => fs.existsSync(jar))) return cached;

  await requireTool('mvn', ['-v'], 'Apache Maven (Debian: apt-get install maven)');
  say(`resolving Kafka ${kafkaVersion()} jars with Maven (cached in ~/.m2 after the first time)`);
  await runCommand('mvn', ['-B', '-q', '-f', pomFile, 'dependency:build-classpath', `-Dmdep.outputFile=${cacheFile}`,
    '-Dmdep.includeScope=runtime'], { what: 'Maven dependency resolution', logFile: path.join(dir, 'maven.log') });
  return fs.readFileSync(cacheFile, 'utf8').trim();
}

export function renderProperties(target: string, values: Record<string, string | number>, templateName = 'server.properties'): void {
  const template = fs.readFileSync(path.join(kafkaDeployDir, templateName), 'utf8');
  const rendered = template.replace(/@([A-Z_]+)@/g, (whole, name: string) => String(values[name] ?? whole));
  fs.writeFileSync(target, rendered);
}

export async function requireTool(command: string, args: string[], install: string): Promise<void> {
  if (!(await commandSucceeds(command, args))) {
    throw new Error(`The local Kafka needs ${install}. Alternatives: a Docker engine, or KAFKA_BROKERS=host:port.`);
  }
}

/**
 * A random cluster id in Kafka's 22-character base64url form. Like Kafka's own
 * `Uuid.randomUuid`, never one starting with '-': the storage tool would read it as an option
 * (1 start in 64 failed that way).
 */
export function newClusterId(): string {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
