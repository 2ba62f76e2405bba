/**
 * Runs the dashboard app (buildDashboardApp) in a process of its own for browser tests, as in
 * production: plain Node's module loader, and an event loop the test's browser driving does not
 * share. Reads the access file DASHBOARD_TEST_ACCESS (JSON), the ClickHouse
 * server from CLICKHOUSE_URL/USER/PASSWORD and the database from CLICKHOUSE_DATABASE; listens on
 * a free local port and prints "listening <url>" on stdout; stops on SIGTERM.
 */
import { createClickHouseClient } from '../../src/clickhouse/client';
import { loadDashboardAccess } from '../../src/dashboard/config';
import { buildDashboardApp } from '../../src/dashboard/server';

async function main(): Promise<void> {
  const env = process.env;
  const clickhouse = createClickHouseClient(
    { url: env.CLICKHOUSE_URL ?? '', username: env.CLICKHOUSE_USER ?? 'default', password: env.CLICKHOUSE_PASSWORD ?? '', database: env.CLICKHOUSE_DATABASE ?? '', cluster: '' },
    { application: 'sessionizer-test-dashboard' },
  );
  const app = await buildDashboardApp({
    clickhouse,
    database: env.CLICKHOUSE_DATABASE ?? '',
    access: loadDashboardAccess(env.DASHBOARD_TEST_ACCESS ?? ''),
    sessionSecret: 'a-test-session-secret-of-32-characters-or-more',
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(`listening ${url}\n`);
  process.once('SIGTERM', () => {
    void app.close().then(() => clickhouse.close()).then(() => process.exit(0));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
