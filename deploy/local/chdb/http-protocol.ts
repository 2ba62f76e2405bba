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
 * - a `multipart/form-data` body carries "external data for query processing": each file part
 *   is a temporary table named after the part, visible to that one query, with its columns from
 *   `<name>_structure` (`a String, b Int64`) or `<name>_types` (columns `_1`, `_2`, …) and its
 *   format from `<name>_format` (default TabSeparated), given in the URL or as form fields. The
 *   statement is then the URL's `query` followed by a `query` form field; other form fields count
 *   as URL parameters (`param_<name>` included, as newer servers accept).
 */
import { randomUUID } from 'node:crypto';
import type { EngineRequest } from './engine';
import { ProtocolError } from './errors';
import { secondStatementAt, trailingFormat } from './statements';

/** A file part of a multipart request: rows of an external table. */
export interface ExternalTableData {
  name: string;
  /** Column list as in CREATE TABLE: `user_key String, start Int64`. */
  structure: string;
  format: string;
  data: Buffer;
}

/** A multipart/form-data body, split: plain fields, and file parts (by part name). */
export interface MultipartBody {
  fields: Array<[string, string]>;
  files: Array<{ name: string; data: Buffer }>;
}

/** Splits a multipart/form-data body with the platform's own parser (undici, as in fetch). */
export async function readMultipart(contentType: string, body: Buffer): Promise<MultipartBody> {
  let form: FormData;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch (error) {
    throw new ProtocolError(27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', `Cannot parse multipart/form-data body: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed: MultipartBody = { fields: [], files: [] };
  for (const [name, value] of form.entries()) {
    if (typeof value === 'string') parsed.fields.push([name, value]);
    else parsed.files.push({ name, data: Buffer.from(await value.arrayBuffer()) });
  }
  return parsed;
}

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
export function parseRequest(urlParams: URLSearchParams, body: Buffer, multipart?: MultipartBody): ParsedRequest | undefined {
  let params = urlParams;
  let externalTables: ExternalTableData[] | undefined;
  if (multipart) {
    // Form fields join the URL's parameters; the form's `query` follows the URL's.
    params = new URLSearchParams(urlParams);
    const formQuery = multipart.fields.filter(([name]) => name === 'query').map(([, value]) => value);
    if (formQuery.length > 0) params.set('query', [urlParams.get('query') ?? '', ...formQuery].filter((q) => q.trim() !== '').join('\n'));
    for (const [name, value] of multipart.fields) if (name !== 'query') params.append(name, value);
    externalTables = multipart.files.map(({ name, data }) => externalTable(params, name, data));
    for (const { name } of multipart.files) for (const suffix of ['_structure', '_types', '_format']) params.delete(name + suffix);
    body = Buffer.alloc(0);
  }
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
    externalTables,
    defaultFormat,
    sessionId: params.get('session_id') || undefined,
    sessionTimeoutSeconds: sessionTimeout ? parseTimeout(sessionTimeout) : undefined,
  };
  const format = insertData ? defaultFormat : (trailingFormat(sql)?.name ?? defaultFormat);
  return { engine, queryId: params.get('query_id') || randomUUID(), format };
}

/** An external table's definition from the request's parameters, as the server reads it. */
function externalTable(params: URLSearchParams, name: string, data: Buffer): ExternalTableData {
  const structure = params.get(`${name}_structure`);
  const types = params.get(`${name}_types`);
  let columns: string;
  if (structure) columns = structure;
  else if (types) columns = types.split(',').map((type, i) => `_${i + 1} ${type.trim()}`).join(', ');
  else throw new ProtocolError(36, 'BAD_ARGUMENTS', `Neither structure nor types have not been provided for external table ${name}. Use fields ${name}_structure or ${name}_types to do so`);
  return { name, structure: columns, format: params.get(`${name}_format`) || DEFAULT_FORMAT, data };
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
