/**
 * The worker and the collector each have their own default HTTP_PORT, so both run on one machine
 * as documented; and a port that cannot be bound stops either at once, with one line and exit 1,
 * before anything connects — never a half-started process that hangs on open clients.
 * (Nothing here reaches a service: the addresses point at closed ports, and the port check
 * comes first.)
 */
import { createServer, type Server } from 'node:net';
import { DEFAULT_HTTP_PORTS, loadConfig, loadHttpPort } from '../../../src/config';
import { closedPort, runCli } from '../../support/cli';

async function occupy(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, resolve));
  return { server, port: (server.address() as { port: number }).port };
}

async function unreachable(): Promise<Record<string, string>> {
  const port = await closedPort();
  return {
    KAFKA_BROKERS: `127.0.0.1:${port}`,
    REDIS_URL: `redis://127.0.0.1:${port}`,
    CLICKHOUSE_URL: `http://127.0.0.1:${port}`,
    COLLECT_WRITE_KEYS: 'k1:site1',
    CONNECT_TIMEOUT_SECONDS: '30',
  };
}

describe('default ports', () => {
  it('worker 9464, collector 9465, dashboard 9466; HTTP_PORT sets the one of the command that runs', () => {
    expect(DEFAULT_HTTP_PORTS).toEqual({ worker: 9464, collect: 9465, dashboard: 9466 });
    expect(loadConfig({}).http).toEqual({ port: 9464, collectPort: 9465, dashboardPort: 9466 });
    expect(loadConfig({ HTTP_PORT: '9500' }).http).toEqual({ port: 9500, collectPort: 9500, dashboardPort: 9500 });
    expect(loadHttpPort({}, 'collect')).toBe(9465);
    expect(loadHttpPort({ HTTP_PORT: '9500' }, 'collect')).toBe(9500);
  });
});

describe('a port that cannot be bound', () => {
  it.each([
    ['worker', 'HTTP_PORT'],
    ['collect', 'HTTP_PORT'],
    ['collect', 'COLLECT_PORT'],
  ])('%s with %s in use: exit 1 with one line, at once', async (command, setting) => {
    const { server, port } = await occupy();
    try {
      const env = { ...(await unreachable()), HTTP_PORT: '0', COLLECT_PORT: '0', [setting]: String(port) };
      const run = await runCli([command], { env, timeoutMs: 30_000 });
      expect({ code: run.code, signal: run.signal }).toEqual({ code: 1, signal: null });
      expect(run.stderr.trim().split('\n')).toEqual([
        `sessionizer: cannot listen on port ${port} (${setting}): the port is in use (another sessionizer worker, collector or dashboard on this machine?). Set ${setting} to a free port`,
      ]);
      // Stopped before trying the (unreachable) services: no connection error, no JSON log.
      expect(run.stdout).toBe('');
    } finally {
      server.close();
    }
  }, 40_000);
});
