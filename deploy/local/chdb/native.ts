/**
 * Typed access to chdb's native addon (the compiled ClickHouse engine).
 *
 * Why not chdb's public `Session` API: the HTTP interface needs three things it does not offer.
 * - Query parameters arrive from HTTP already in ClickHouse's escaped text form (`param_x=...`).
 *   `Session.queryBindAsync` expects JS values and escapes strings again, which would corrupt
 *   arrays, maps and backslashes. The native call takes the escaped form as-is, exactly like
 *   the server does.
 * - `Session.insert` only accepts a bare table identifier and builds its own `INSERT` prefix;
 *   the client sends arbitrary `INSERT INTO db.t (cols) FORMAT X` text with the rows in the body.
 * - Settings and `USE db` are connection state, so each request gets its own short-lived
 *   connection (about 1 ms) instead of one shared session.
 * The loader is resolved from the installed package, so the platform binary chdb picked is used.
 */
import path from 'node:path';

/** Opaque handle of one engine connection. */
export type NativeConnection = { readonly __brand: 'chdb-connection' };

export interface NativeQueryResult {
  bytes: Uint8Array;
  /** Seconds. */
  elapsed: number;
  rowsRead: number;
  bytesRead: number;
}

export interface NativeInsertResult {
  /** Seconds. */
  elapsed: number;
  /** Includes rows written by materialized views, like the server's X-ClickHouse-Summary. */
  rowsWritten: number;
  bytesWritten: number;
}

export interface ChdbNative {
  CreateConnection(dataPath: string, args?: string[]): NativeConnection;
  CloseConnection(connection: NativeConnection): void;
  /** `format` is the default output format; a FORMAT clause in the SQL wins over it. */
  QueryAsyncConnection(
    connection: NativeConnection,
    sql: string,
    format: string,
    params?: Record<string, string>,
  ): Promise<NativeQueryResult>;
  /** Runs `prefix` (an INSERT ... FORMAT X) with `data` as its inline rows. */
  InsertRawAsyncConnection(
    connection: NativeConnection,
    prefix: string,
    data: Buffer,
    countLines: boolean,
  ): Promise<NativeInsertResult>;
}

interface ChdbLoader {
  loadNative(): ChdbNative;
}

/** Loads the addon through chdb's own loader (it knows where the platform package put it). */
export function loadChdbNative(): ChdbNative {
  const packageDir = path.dirname(require.resolve('chdb'));
  // The loader is not in the package's `exports` map, hence the absolute path.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loader = require(path.join(packageDir, 'dist', 'loader.js')) as ChdbLoader;
  return loader.loadNative();
}
