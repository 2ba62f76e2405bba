/**
 * Redis for tests and local runs: always a `redis-server` of our own, started in the background
 * without persistence (after installing Debian's package when the binary is missing), with its
 * data under the services state directory. A Redis already running on 127.0.0.1:6379 is never
 * used: the worker's state in Redis belongs to one Kafka log, and a shared Redis outlives the
 * local Kafka, which starts afresh each time — the next worker would find state of a log that
 * no longer exists and stop. Our own Redis is emptied whenever a fresh local Kafka starts
 * (`emptyLocalRedis`, called by services.ts), so the two always start over together.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isOurs, readState, say, spawnDaemon, stopAndRethrow, stopDaemon, waitUntilReady, writeState } from './daemon';
import { commandSucceeds, runCommand } from './exec';
import { repoRoot, serviceDir } from './paths';
import { pickPort, tcpExchange } from './ports';
import type { LocalService } from './service';

/** Not 6379: a Redis there (a developer's own, or a shared one) is left alone. */
const PREFERRED_PORT = 16379;

const redisEnv = (port: number): Record<string, string> => ({ REDIS_URL: `redis://127.0.0.1:${port}` });

export async function ensureRedis(): Promise<LocalService> {
  const dir = serviceDir('redis');
  const stateFile = path.join(dir, 'state.json');
  const existing = readState(stateFile);
  if (existing && isOurs(existing.pid, existing.marker)) {
    await waitUntilReady(() => answersPing(existing.port), { what: 'Redis', ...existing, timeoutMs: 20_000 });
    return { name: 'redis', env: redisEnv(existing.port), startedNow: false };
  }

  const binary = findRedisServer() ?? (await installRedisServer());
  const port = await pickPort(PREFERRED_PORT);
  const dataDir = path.join(dir, 'data');
  fs.rmSync(dataDir, { recursive: true, force: true }); // nothing of an earlier run survives
  fs.mkdirSync(dataDir, { recursive: true });
  const logFile = path.join(dir, 'redis.log');
  fs.writeFileSync(logFile, ''); // one log per start
  say(`starting Redis on 127.0.0.1:${port} (log: ${path.relative(repoRoot, logFile)})`);
  const pid = spawnDaemon({
    command: binary,
    // set-proc-title no: keep the command line (and so the marker below) as spawned.
    args: ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no',
      '--set-proc-title', 'no', '--dir', dataDir],
    logFile,
  });
  const state = { pid, marker: dataDir, port, logFile, startedAt: new Date().toISOString() };
  writeState(stateFile, state);
  await waitUntilReady(() => answersPing(port), { what: 'Redis', ...state, timeoutMs: 20_000 }).catch(stopAndRethrow(stopRedis));
  return { name: 'redis', env: redisEnv(port), startedNow: true };
}

/** Stops the Redis this tooling started; a Redis it found running is left alone. */
export async function stopRedis(): Promise<boolean> {
  const stateFile = path.join(serviceDir('redis'), 'state.json');
  const state = readState(stateFile);
  if (!state) return false;
  const running = isOurs(state.pid, state.marker);
  if (running) say(`stopping Redis (pid ${state.pid})`);
  await stopDaemon(state.pid, state.marker, 10_000);
  fs.rmSync(stateFile, { force: true });
  return running;
}

async function answersPing(port: number, timeoutMs = 1000): Promise<boolean> {
  const answer = await tcpExchange(port, 'PING\r\n', timeoutMs);
  return answer?.startsWith('+PONG') ?? false;
}

/**
 * Deletes every key of the Redis this tooling started, if it runs: called when a fresh local
 * Kafka starts, because worker state made from the previous Kafka's log would stop the next
 * worker ("belongs to another log"). Returns whether there was one to empty.
 */
export async function emptyLocalRedis(): Promise<boolean> {
  const state = readState(path.join(serviceDir('redis'), 'state.json'));
  if (!state || !isOurs(state.pid, state.marker)) return false;
  const answer = await tcpExchange(state.port, 'FLUSHALL\r\n', 10_000);
  if (!answer?.startsWith('+OK')) throw new Error(`could not empty the local Redis on 127.0.0.1:${state.port} (answer: ${JSON.stringify(answer ?? 'none')})`);
  return true;
}

function findRedisServer(): string | undefined {
  for (const candidate of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    if (fs.existsSync(candidate)) return candidate;
  }
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const found = which.stdout?.trim();
  return which.status === 0 && found ? found : undefined;
}

/** Debian's redis-server package, when we are root and have apt-get (as on CI). */
async function installRedisServer(): Promise<string> {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !(await commandSucceeds('sh', ['-c', 'command -v apt-get']))) {
    throw new Error('No redis-server binary: install Redis (Debian: apt-get install redis-server), or set REDIS_URL to a Redis of your own.');
  }
  say('redis-server not found: installing Debian package redis-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runCommand('apt-get', ['update'], { what: 'apt-get update', env });
  await runCommand('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], { what: 'apt-get install', env });
  const binary = findRedisServer();
  if (!binary) throw new Error('redis-server still missing after apt-get install redis-server');
  return binary;
}
