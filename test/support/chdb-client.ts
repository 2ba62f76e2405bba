/**
 * A ClickHouseClient for `migrate` (and the few reads it makes) that runs on an in-process chdb
 * session: unit tests apply the real schema files, table rebuilds included, without a server.
 * `rewrite` changes each statement first (the cluster tests run the cluster layout as one node).
 * Only what the migrations runner uses is there: command, query (JSONEachRow) and insert.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Session } from 'chdb';

export function chdbClient(session: Session, rewrite: (statement: string) => string = (s) => s, afterEach: (statement: string) => void = () => undefined): ClickHouseClient {
  const run = (query: string, params?: Record<string, unknown>, format = 'TSV'): string => {
    const text = rewrite(query);
    const out = params && Object.keys(params).length > 0 ? session.queryBind(text, params, format) : session.query(text, format);
    afterEach(text);
    return out;
  };
  const client = {
    command: async ({ query, query_params }: { query: string; query_params?: Record<string, unknown> }) => {
      run(query, query_params);
      return {};
    },
    query: async ({ query, query_params }: { query: string; query_params?: Record<string, unknown> }) => {
      const text = run(query, query_params, 'JSONEachRow');
      return { json: async () => text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as unknown) };
    },
    insert: async ({ table, values }: { table: string; values: object[] }) => {
      session.query(`INSERT INTO ${table} FORMAT JSONEachRow ${values.map((v) => JSON.stringify(v)).join('\n')}`);
      return {};
    },
  };
  return client as unknown as ClickHouseClient;
}
