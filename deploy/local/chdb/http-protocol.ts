/**
 * Translates a ClickHouse HTTP request (URL parameters + body) into an engine request, and the
 * output format into response headers — the part of the HTTP interface @clickhouse/client uses.
 *
 * What the server does, and so what this does:
 * - the statement is `query` from the URL followed by the body, or the body alone;
 * - `INSERT ... FORMAT X` in the URL with a body: the body is the rows;
 * - one statement per request (chdb itself would run several);
 * - `param_<name>` binds `{name:Type}`; `database`, `default_format`, `query_id`, `session_id`
 *   and `session_timeout` are request options; every other URL parameter is a setting, except
 *   the few the server itself consumes (listed below) which are ignored here.
 */
import { randomUUID } from 'node:crypto';
import type { EngineRequest } from './engine';
import { ProtocolError } from './errors';
import { secondStatementAt, trailingFormat } from './statements';

export interface ParsedRequest {
  engine: EngineRequest;
  queryId: string;
  /** The output format the response is in, for Content-Type and X-ClickHouse-Format. */
  format: string;
}

/** URL parameters that are request options, handled by name. */
const REQUEST_OPTIONS = new Set(['query', 'database', 'default_format', 'query_id', 'session_id', 'session_timeout']);

/**
 * Parameters the server consumes itself (authentication, HTTP buffering, compression framing)
 * or that only make sense for a real server process; they are not settings of a query here.
 */
const SERVER_ONLY = new Set([
  'user', 'password', 'quota_key', 'role', 'session_check', 'compress', 'decompress', 'buffer_size',
  'wait_end_of_query', 'stacktrace', 'client_protocol_version', 'http_headers_progress_interval_ms',
  'send_progress_in_http_headers', 'http_wait_end_of_query', 'http_response_buffer_size',
  'enable_http_compression', 'http_zlib_compression_level', 'cancel_http_readonly_queries_on_client_close',
]);

const INSERT_WITH_FORMAT = /^\s*INSERT\s+INTO\b[\s\S]*\bFORMAT\s+[A-Za-z0-9_]+\s*;?\s*$/i;
const DEFAULT_FORMAT = 'TabSeparated';

/** Returns undefined when there is no statement at all (the server answers "Ok." then). */
export function parseRequest(params: URLSearchParams, body: Buffer): ParsedRequest | undefined {
  const urlQuery = params.get('query') ?? '';
  let sql: string;
  let insertData: Buffer | undefined;
  if (urlQuery.trim() !== '' && body.length > 0 && INSERT_WITH_FORMAT.test(urlQuery)) {
    // Rows are handed to the engine as bytes next to the statement, never decoded or parsed
    // here (they may be megabytes, and binary).
    sql = urlQuery;
    insertData = body;
  } else {
    const bodyText = body.length > 0 ? body.toString('utf8') : '';
    sql = [urlQuery, bodyText].filter((part) => part.trim() !== '').join('\n');
  }
  if (sql.trim() === '') return undefined;
  const second = secondStatementAt(sql);
  if (second >= 0) {
    throw new ProtocolError(62, 'SYNTAX_ERROR', `Syntax error (Multi-statements are not allowed): failed at position ${second + 1} (end of query)`);
  }

  const queryParams: Record<string, string> = {};
  const settings: Array<[string, string]> = [];
  for (const [name, value] of params) {
    if (name.startsWith('param_')) queryParams[name.slice('param_'.length)] = value;
    else if (!REQUEST_OPTIONS.has(name) && !SERVER_ONLY.has(name)) settings.push([name, value]);
  }

  const defaultFormat = params.get('default_format') || DEFAULT_FORMAT;
  const sessionTimeout = params.get('session_timeout');
  const engine: EngineRequest = {
    sql,
    insertData,
    params: queryParams,
    settings,
    database: params.get('database') ?? undefined,
    defaultFormat,
    sessionId: params.get('session_id') || undefined,
    sessionTimeoutSeconds: sessionTimeout ? parseTimeout(sessionTimeout) : undefined,
  };
  const format = insertData ? defaultFormat : (trailingFormat(sql)?.name ?? defaultFormat);
  return { engine, queryId: params.get('query_id') || randomUUID(), format };
}

function parseTimeout(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new ProtocolError(36, 'BAD_ARGUMENTS', `Invalid session timeout: '${value}'`);
  }
  return seconds;
}

/** Content-Type the server sends for an output format. */
export function contentTypeFor(format: string): string {
  const f = format.toLowerCase();
  if (f.startsWith('json') && !f.includes('eachrow') && !f.includes('lines')) return 'application/json; charset=UTF-8';
  if (f.startsWith('json') || f === 'ndjson' || f === 'jsonl') return 'application/x-ndjson; charset=UTF-8';
  if (f.startsWith('tabseparated') || f.startsWith('tsv')) return 'text/tab-separated-values; charset=UTF-8';
  if (f.startsWith('csv')) return 'text/csv; charset=UTF-8; header=absent';
  return 'text/plain; charset=UTF-8';
}
