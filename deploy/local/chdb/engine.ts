/**
 * Runs ClickHouse statements on chdb, one at a time, with per-request settings.
 *
 * chdb is the whole engine inside this process, so requests are serialized through one queue:
 * its parameterized calls share process-wide state and are not safe to overlap, and tests never
 * need two queries to run at once. Settings and the current database are connection state in
 * chdb, so every request runs on a fresh connection (cheap: about 1 ms) that is closed afterwards;
 * that keeps one request's `SET`/`USE` from leaking into the next, as on a real server. Requests
 * with a `session_id` keep their connection, like an HTTP session of the server.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChdbNative, NativeConnection } from './native';
import { ProtocolError } from './errors';
import type { ExternalTableData } from './http-protocol';
import { trailingFormat } from './statements';

export interface EngineRequest {
  /** The statement. For an insert with rows in `insertData`, the `INSERT ... FORMAT X` prefix. */
  sql: string;
  /** Rows for an INSERT whose statement came in the URL and whose data came in the body. */
  insertData?: Buffer;
  /** Query parameters in ClickHouse's escaped text form, bound to `{name:Type}` placeholders. */
  params: Record<string, string>;
  /** Settings to apply for this request, as given in the URL. */
  settings: Array<[name: string, value: string]>;
  database?: string;
  /** External data sent with the query (multipart/form-data): temporary tables for this query only. */
  externalTables?: ExternalTableData[];
  /** Output format when the statement has no FORMAT clause. */
  defaultFormat: string;
  sessionId?: string;
  sessionTimeoutSeconds?: number;
}

export interface EngineResult {
  body: Buffer;
  readRows: number;
  readBytes: number;
  writtenRows: number;
  writtenBytes: number;
  elapsedSeconds: number;
}

interface HttpSession {
  connection: NativeConnection;
  expiresAt: number;
}

const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Binary input formats (RowBinary and its variants, Native). */
const BINARY_FORMAT = /^(RowBinary[A-Za-z]*|Native)$/i;
const DEFAULT_SESSION_TIMEOUT_SECONDS = 60;

/** A single-quoted ClickHouse string literal: only `\` and `'` can break out of it. */
export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A back-quoted ClickHouse identifier. */
export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

export class ChdbEngine {
  /** Held open for the life of the server: it binds the engine to the data directory. */
  private readonly primary: NativeConnection;
  private readonly sessions = new Map<string, HttpSession>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Where binary insert bodies wait as files for `FROM INFILE` (see `insertFromFile`). */
  private readonly insertDir: string;

  constructor(
    private readonly native: ChdbNative,
    private readonly dataPath: string,
  ) {
    // Load existing tables before the first query instead of lazily in the background, so a
    // restarted server answers with all its databases.
    this.primary = native.CreateConnection(dataPath, ['--async_load_databases=0']);
    this.insertDir = path.join(dataPath, 'http-inserts');
    mkdirSync(this.insertDir, { recursive: true });
  }

  /** Queues the request behind every earlier one. */
  execute(request: EngineRequest): Promise<EngineResult> {
    const run = this.queue.then(() => this.run(request));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async version(): Promise<string> {
    const result = await this.execute({ sql: 'SELECT version()', params: {}, settings: [], defaultFormat: 'TabSeparated' });
    return result.body.toString('utf8').trim();
  }

  /** Waits for queued requests, then releases every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    for (const session of this.sessions.values()) this.native.CloseConnection(session.connection);
    this.sessions.clear();
    this.native.CloseConnection(this.primary);
  }

  private async run(request: EngineRequest): Promise<EngineResult> {
    if (this.closed) throw new ProtocolError(210, 'NETWORK_ERROR', 'Server is shutting down');
    this.expireSessions();
    const session = request.sessionId === undefined ? undefined : this.session(request);
    const connection = session?.connection ?? this.native.CreateConnection(this.dataPath);
    const tables = request.externalTables ?? [];
    try {
      await this.prepare(connection, request);
      for (const table of tables) await this.createExternalTable(connection, table);
      return await this.statement(connection, request);
    } finally {
      // A fresh connection takes its temporary tables with it; a session's must go by hand.
      if (session) for (const table of tables) await this.native.QueryAsyncConnection(connection, `DROP TEMPORARY TABLE IF EXISTS ${quoteIdentifier(table.name)}`, 'TabSeparated').catch(() => undefined);
      else this.native.CloseConnection(connection);
    }
  }

  /**
   * External data as the server holds it: a temporary table of the connection, which the query
   * names without a database (a temporary table is found before any database's table).
   */
  private async createExternalTable(connection: NativeConnection, table: ExternalTableData): Promise<void> {
    const name = quoteIdentifier(table.name);
    await this.native.QueryAsyncConnection(connection, `CREATE TEMPORARY TABLE ${name} (${table.structure}) ENGINE = Memory`, 'TabSeparated');
    if (table.data.length === 0) return;
    const insert = `INSERT INTO ${name} FORMAT ${table.format}`;
    if (BINARY_FORMAT.test(table.format)) await this.insertFromFile(connection, insert, insert.length - `FORMAT ${table.format}`.length, table.data);
    else await this.native.InsertRawAsyncConnection(connection, insert, table.data, false);
  }

  /** Applies the request's settings and database to its connection. */
  private async prepare(connection: NativeConnection, request: EngineRequest): Promise<void> {
    for (const [name, value] of request.settings) {
      if (!SETTING_NAME.test(name)) throw new ProtocolError(115, 'UNKNOWN_SETTING', `Unknown setting '${name}'`);
      // The HTTP interface hands setting values over as strings; SET converts them to the
      // setting's type the same way (e.g. '1' for a UInt64, 'true' for a Bool).
      await this.native.QueryAsyncConnection(connection, `SET ${name} = ${quoteString(value)}`, 'TabSeparated');
    }
    if (request.database !== undefined && request.database !== '') {
      await this.native.QueryAsyncConnection(connection, `USE ${quoteIdentifier(request.database)}`, 'TabSeparated');
    }
  }

  private async statement(connection: NativeConnection, request: EngineRequest): Promise<EngineResult> {
    if (request.insertData !== undefined) {
      const format = trailingFormat(request.sql);
      if (format && BINARY_FORMAT.test(format.name)) return this.insertFromFile(connection, request.sql, format.at, request.insertData);
      const inserted = await this.native.InsertRawAsyncConnection(connection, request.sql, request.insertData, false);
      return {
        body: Buffer.alloc(0),
        readRows: 0,
        readBytes: 0,
        writtenRows: inserted.rowsWritten,
        writtenBytes: inserted.bytesWritten,
        elapsedSeconds: inserted.elapsed,
      };
    }
    const hasParams = Object.keys(request.params).length > 0;
    const result = hasParams
      ? await this.native.QueryAsyncConnection(connection, request.sql, request.defaultFormat, request.params)
      : await this.native.QueryAsyncConnection(connection, request.sql, request.defaultFormat);
    return {
      body: Buffer.from(result.bytes.buffer, result.bytes.byteOffset, result.bytes.byteLength),
      readRows: result.rowsRead,
      readBytes: result.bytesRead,
      writtenRows: 0,
      writtenBytes: 0,
      elapsedSeconds: result.elapsed,
    };
  }

  /**
   * Binary rows go through a file: chdb's inline-data insert misreads some binary payloads (a
   * RowBinary row whose last Int64 is 2570, bytes `0a 0a 00 …`, fails with "Cannot read all
   * data"), while `FROM INFILE` reads the bytes exactly, as the server reads an HTTP body.
   */
  private async insertFromFile(connection: NativeConnection, sql: string, formatAt: number, data: Buffer): Promise<EngineResult> {
    const file = path.join(this.insertDir, `${randomUUID()}.bin`);
    writeFileSync(file, data);
    try {
      // INFILE comes before a SETTINGS clause, and before FORMAT.
      const at = /\bSETTINGS\b/i.exec(sql)?.index ?? formatAt;
      const statement = `${sql.slice(0, at)} FROM INFILE ${quoteString(file)} ${sql.slice(at)}`;
      const result = await this.native.QueryAsyncConnection(connection, statement, 'TabSeparated');
      return { body: Buffer.alloc(0), readRows: 0, readBytes: 0, writtenRows: result.rowsRead, writtenBytes: result.bytesRead, elapsedSeconds: result.elapsed };
    } finally {
      rmSync(file, { force: true });
    }
  }

  private session(request: EngineRequest): HttpSession {
    const id = request.sessionId as string;
    const timeoutMs = (request.sessionTimeoutSeconds ?? DEFAULT_SESSION_TIMEOUT_SECONDS) * 1000;
    let session = this.sessions.get(id);
    if (!session) {
      session = { connection: this.native.CreateConnection(this.dataPath), expiresAt: 0 };
      this.sessions.set(id, session);
    }
    session.expiresAt = Date.now() + timeoutMs;
    return session;
  }

  private expireSessions(): void {
    const now = Date.now();
    for (const [id, session] of this.sessions) {
      if (session.expiresAt > now) continue;
      this.native.CloseConnection(session.connection);
      this.sessions.delete(id);
    }
  }
}
