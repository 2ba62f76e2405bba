/**
 * Queries that take long lists of values (recalculation's pages of user keys) without putting
 * them in the URL: the values travel in the request body as ClickHouse "external data" — a
 * multipart/form-data body whose file parts are temporary tables for that one query — and the
 * statement names them like tables. URLs stay short whatever the page size (servers and proxies
 * cap them: ClickHouse's `http_max_uri_size`, often 8–16 KiB in a proxy, 16 KiB in Node's own
 * HTTP server); external data works on every ClickHouse version, unlike query parameters in a
 * form body. The statement itself goes in the URL's `query` parameter, as the server wants with
 * multipart bodies: it is a fixed text of about a kilobyte.
 *
 * Failures always say what was being done and why (`ClickHouseQueryError`): the server's
 * message, else the HTTP status (a proxy's bare error page), else the network error.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { ClickHouseQueryError } from '../errors';

/** One temporary table for the query: its name, columns (`name Type, …`) and rows. */
export interface ExternalTable {
  name: string;
  structure: string;
  rows: Iterable<ReadonlyArray<string | number>>;
}

export interface TableQuery {
  /** SELECT without FORMAT (JSONEachRow is added). */
  query: string;
  tables: readonly ExternalTable[];
  /** Small scalar parameters (numbers, a date): these may go in the URL. */
  params?: Record<string, unknown>;
  settings?: ClickHouseSettings;
  /** What this query is for, for error messages: "reading the sessions of 500 user keys". */
  doing: string;
}

/** The longest server message quoted in an error (a proxy may answer with a whole HTML page). */
const MAX_QUOTED = 2_000;

/** A value as a TabSeparated field: backslash, tab, newline and carriage return escaped. */
export function tsvField(value: string | number): string {
  if (typeof value === 'number') return String(value);
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/**
 * The multipart/form-data body carrying `tables` as TabSeparated file parts; null in the
 * (astronomically unlikely, the boundary holds a random UUID) case that the data contains the
 * boundary, which parsers would take for the end of a part: the caller picks another.
 */
export function multipartBody(tables: readonly ExternalTable[], boundary: string): Buffer | null {
  const parts: string[] = [];
  for (const table of tables) {
    const lines: string[] = [];
    for (const row of table.rows) lines.push(row.map(tsvField).join('\t'));
    if (lines.some((line) => line.includes(boundary))) return null;
    parts.push(
      `--${boundary}\r\nContent-Disposition: form-data; name="${table.name}"; filename="${table.name}.tsv"\r\n` +
        `Content-Type: text/tab-separated-values\r\n\r\n${lines.join('\n')}${lines.length > 0 ? '\n' : ''}\r\n`,
    );
  }
  parts.push(`--${boundary}--\r\n`);
  return Buffer.from(parts.join(''), 'utf8');
}

/** Runs the query and streams its rows (JSONEachRow), one parsed object at a time. */
export async function* queryRows<T>(client: ClickHouseClient, request: TableQuery): AsyncGenerator<T> {
  let boundary = `sessionizer-${randomUUID()}`;
  let body = multipartBody(request.tables, boundary);
  while (body === null) body = multipartBody(request.tables, (boundary = `sessionizer-${randomUUID()}`));
  const settings: Record<string, unknown> = { ...request.settings };
  for (const table of request.tables) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table.name)) throw new Error(`not a plain external table name: ${table.name}`);
    settings[`${table.name}_structure`] = table.structure;
    settings[`${table.name}_format`] = 'TabSeparated';
  }
  let result;
  try {
    // With a multipart body, some server versions ignore query parameters and settings given in
    // the URL (ClickHouse issue 85847, fixed in 25.8): bind the few numbers into the text instead.
    // Settings read here only shape JSON output, which the callers do not depend on.
    const multipart = request.tables.length > 0;
    const query = `${multipart ? inlineIntegers(request.query, request.params ?? {}) : request.query}\nFORMAT JSONEachRow`;
    const common = { query_params: multipart ? undefined : request.params, clickhouse_settings: settings as ClickHouseSettings, ignore_error_response: true };
    result =
      request.tables.length === 0
        ? // Nothing to attach: the statement goes in the body, as usual.
          await client.exec({ query, ...common })
        : await client.exec({
            query,
            values: Readable.from([body]),
            http_headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
            ...common,
          });
  } catch (err) {
    throw new ClickHouseQueryError(request.doing, describeError(err), { cause: err });
  }
  const status = result.http_status_code ?? 200;
  if (status < 200 || status >= 300) {
    const text = await readText(result.stream).catch(() => '');
    throw new ClickHouseQueryError(request.doing, serverReason(text, status), { status });
  }
  yield* jsonLines<T>(result.stream, request.doing);
}

/**
 * `{name:Type}` placeholders of integer types replaced by their values as literals of that type
 * (`toInt64(42)`); only safe integers are accepted, so nothing but digits enters the text.
 */
export function inlineIntegers(query: string, params: Record<string, unknown>): string {
  return query.replace(/\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9]+)\}/g, (placeholder, name: string, type: string) => {
    const value = params[name];
    if (!/^U?Int(8|16|32|64)$/.test(type) || typeof value !== 'number' || !Number.isSafeInteger(value)) {
      throw new Error(`cannot bind ${placeholder} to ${JSON.stringify(value)} in a query with external data (integers only)`);
    }
    return `to${type}(${value})`;
  });
}

/** All rows of the query. */
export async function queryAll<T>(client: ClickHouseClient, request: TableQuery): Promise<T[]> {
  const rows: T[] = [];
  for await (const row of queryRows<T>(client, request)) rows.push(row);
  return rows;
}

/**
 * Rows of a JSONEachRow stream. An error after the response began comes as text in the body
 * (`Code: …. DB::Exception: …`) or, on newer servers, as an `{"exception": …}` row: both fail.
 */
async function* jsonLines<T>(stream: Readable, doing: string): AsyncGenerator<T> {
  let pending = '';
  const parse = (line: string): T => {
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new ClickHouseQueryError(doing, serverReason(pending ? `${line}\n${pending}` : line, 200));
    }
    if (row !== null && typeof row === 'object' && 'exception' in row && Object.keys(row).length === 1) {
      throw new ClickHouseQueryError(doing, String((row as { exception: unknown }).exception));
    }
    return row as T;
  };
  try {
    for await (const chunk of stream) {
      pending += (chunk as Buffer).toString('utf8');
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim() !== '') yield parse(line);
      }
    }
  } catch (err) {
    if (err instanceof ClickHouseQueryError) throw err;
    throw new ClickHouseQueryError(doing, `the response broke off: ${describeError(err)}`, { cause: err });
  } finally {
    stream.destroy();
  }
  if (pending.trim() !== '') yield parse(pending);
}

async function readText(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += (chunk as Buffer).toString('utf8');
    if (text.length > MAX_QUOTED * 2) break;
  }
  stream.destroy();
  return text;
}

/** The server's message when it sent one, else the status. */
function serverReason(text: string, status: number): string {
  const message = text.replace(/\s+/g, ' ').trim();
  if (message === '') return `HTTP ${status} with no message from the server (a proxy or load balancer in between, or a URL or body limit)`;
  const quoted = message.length > MAX_QUOTED ? `${message.slice(0, MAX_QUOTED)}…` : message;
  return status === 200 ? quoted : `HTTP ${status}: ${quoted}`;
}

/** An error's message, or its name and code when it has none. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err) || 'an error with no message';
  const code = (err as NodeJS.ErrnoException).code;
  if (err.message.trim() !== '') return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  return `${err.name}${code ? ` ${code}` : ''} with no message`;
}
