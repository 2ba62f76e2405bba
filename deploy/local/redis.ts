/**
 * Redis for tests and local runs. A Redis already answering on 127.0.0.1:6379 (many dev and CI
 * machines run one) is used as it is and never stopped; tests keep to their own key prefixes.
 * Otherwise `redis-server` is started in the background without persistence, after installing
 * Debian's package when the binary is missing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isOurs, readState, say, spawnDaemon, stopAndRethrow, stopDaemon, waitUntilReady, writeState } from './daemon';
import { commandSucceeds, runCommand } from './exec';
import { repoRoot, serviceDir } from './paths';
import { isPortFree, pickPort, tcpExchange } from './ports';
import type { LocalService } from './service';

const SHARED_PORT = 6379;
const PREFERRED_PORT = 16379;

const redisEnv = (port: number): Record<string, string> => ({ REDIS_URL: `redis://127.0.0.1:${port}` });

export async function ensureRedis(): Promise<LocalService> {
  if (await sharedRedisAnswers()) return { name: 'redis', env: redisEnv(SHARED_PORT), startedNow: false };

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
 * Is the shared Redis on 6379 there and usable? Asked a few times with a generous timeout: on a
 * loaded two-core machine a single short probe can miss it, and then a second Redis would be
 * started for nothing. A Redis that wants a password (-NOAUTH) is not usable without one.
 */
async function sharedRedisAnswers(): Promise<boolean> {
  let last: string | undefined;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    last = await tcpExchange(SHARED_PORT, 'PING\r\n', 3000);
    if (last?.startsWith('+PONG')) return true;
    if (last === undefined && !(await portHasListener(SHARED_PORT))) break; // nothing there at all
  }
  say(`no usable Redis on 127.0.0.1:${SHARED_PORT} (${last === undefined ? 'no answer' : `answered ${JSON.stringify(last.trim())}`})`);
  return false;
}

async function portHasListener(port: number): Promise<boolean> {
  return !(await isPortFree(port));
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
    throw new Error('No Redis on 127.0.0.1:6379 and no redis-server binary: install Redis, or set REDIS_URL.');
  }
  say('redis-server not found: installing Debian package redis-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runCommand('apt-get', ['update'], { what: 'apt-get update', env });
  await runCommand('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], { what: 'apt-get install', env });
  const binary = findRedisServer();
  if (!binary) throw new Error('redis-server still missing after apt-get install redis-server');
  return binary;
}
