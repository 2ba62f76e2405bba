/**
 * ClickHouse without Docker: deploy/local/chdb-http-server.ts (the ClickHouse engine from the
 * chdb npm package behind the ClickHouse HTTP interface) as a background Node process.
 * Each start begins with an empty data directory, like a fresh container.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { isOurs, readState, say, spawnDaemon, stopAndRethrow, stopDaemon, waitUntilReady, writeState } from './daemon';
import { deployDir, repoRoot, serviceDir } from './paths';
import { pickPort } from './ports';
import type { LocalService } from './service';

const PREFERRED_PORT = 18123;
const READY_TIMEOUT_MS = 60_000;

/** The chdb server accepts any credentials; these are what clients are told to send. */
const clickhouseEnv = (port: number): Record<string, string> => ({
  CLICKHOUSE_URL: `http://127.0.0.1:${port}`,
  CLICKHOUSE_USER: 'default',
  CLICKHOUSE_PASSWORD: '',
});

export async function ensureClickHouse(): Promise<LocalService> {
  const dir = serviceDir('clickhouse');
  const stateFile = path.join(dir, 'state.json');
  const existing = readState(stateFile);
  if (existing && isOurs(existing.pid, existing.marker)) {
    await waitUntilReady(() => pingAnswers(existing.port), { what: 'ClickHouse (chdb)', ...existing, timeoutMs: READY_TIMEOUT_MS });
    return { name: 'clickhouse', env: clickhouseEnv(existing.port), startedNow: false };
  }

  try {
    require.resolve('chdb');
  } catch {
    throw new Error('The local ClickHouse needs the chdb devDependency: run npm install (or set CLICKHOUSE_URL).');
  }
  const port = await pickPort(PREFERRED_PORT);
  const dataDir = path.join(dir, 'data');
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  const logFile = path.join(dir, 'clickhouse.log');
  fs.writeFileSync(logFile, ''); // one log per start
  say(`starting ClickHouse (chdb) on 127.0.0.1:${port} (log: ${path.relative(repoRoot, logFile)})`);
  const pid = spawnDaemon({
    command: process.execPath,
    args: ['-r', require.resolve('ts-node/register/transpile-only'), path.join(deployDir, 'chdb-http-server.ts'),
      '--port', String(port), '--data', dataDir],
    logFile,
    cwd: repoRoot,
    // UTC like the server images, so DateTime values without an explicit zone read the same.
    env: { ...process.env, TZ: 'UTC' },
  });
  const state = { pid, marker: dataDir, port, logFile, startedAt: new Date().toISOString() };
  writeState(stateFile, state);
  await waitUntilReady(() => pingAnswers(port), { what: 'ClickHouse (chdb)', ...state, timeoutMs: READY_TIMEOUT_MS })
    .catch(stopAndRethrow(stopClickHouse));
  return { name: 'clickhouse', env: clickhouseEnv(port), startedNow: true };
}

export async function stopClickHouse(): Promise<boolean> {
  const stateFile = path.join(serviceDir('clickhouse'), 'state.json');
  const state = readState(stateFile);
  if (!state) return false;
  const running = isOurs(state.pid, state.marker);
  if (running) say(`stopping ClickHouse (pid ${state.pid})`);
  await stopDaemon(state.pid, state.marker, 10_000);
  fs.rmSync(stateFile, { force: true });
  return running;
}

function pingAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/ping', timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve(res.statusCode === 200 && body.startsWith('Ok.')));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}
