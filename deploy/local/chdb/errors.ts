/**
 * ClickHouse exceptions as the HTTP interface reports them.
 *
 * The engine already words its errors the way the server does ("Code: 60. DB::Exception: ...
 * (UNKNOWN_TABLE)"); @clickhouse/client parses exactly that text into a ClickHouseError with
 * `code` and `type`, so the body is passed on unchanged and only the status code and the
 * `X-ClickHouse-Exception-Code` header are derived from it here.
 */

export interface ClickHouseException {
  code: number;
  /** Error name such as UNKNOWN_TABLE, when the message carries one. */
  type?: string;
  message: string;
}

/** An error raised by this server itself, worded like one of the engine's. */
export class ProtocolError extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    text: string,
  ) {
    super(`Code: ${code}. DB::Exception: ${text}. (${type})`);
  }
}

const CODE_RE = /Code: (\d+)\./;
// Same shape the client looks for: an upper-case name in parentheses after the message.
const TYPE_RE = /\(([A-Z][A-Z0-9_]*[A-Z]{3}[A-Z0-9_]*)\)/;

export function toClickHouseException(error: unknown): ClickHouseException {
  const message = error instanceof Error ? error.message : String(error);
  const code = Number(CODE_RE.exec(message)?.[1] ?? 1001); // 1001 = STD_EXCEPTION
  const type = TYPE_RE.exec(message)?.[1];
  if (CODE_RE.test(message)) return { code, type, message };
  // Not an engine message (a bug here, a decompression failure...): still give the client
  // something it can parse rather than a bare string.
  return { code, type: 'STD_EXCEPTION', message: `Code: ${code}. DB::Exception: ${message}. (STD_EXCEPTION)` };
}

// The server's own mapping (HTTPHandler's exceptionCodeToHTTPStatus), by error name.
const BAD_REQUEST = new Set([
  'CANNOT_PARSE_TEXT', 'CANNOT_PARSE_ESCAPE_SEQUENCE', 'CANNOT_PARSE_QUOTED_STRING', 'CANNOT_PARSE_DATE',
  'CANNOT_PARSE_DATETIME', 'CANNOT_PARSE_NUMBER', 'CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING', 'CANNOT_PARSE_IPV4',
  'CANNOT_PARSE_IPV6', 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', 'CANNOT_PARSE_UUID', 'DUPLICATE_COLUMN',
  'ILLEGAL_COLUMN', 'UNKNOWN_ELEMENT_IN_AST', 'UNKNOWN_TYPE_OF_AST_NODE', 'THERE_IS_NO_COLUMN', 'TOO_DEEP_AST',
  'TOO_BIG_AST', 'UNEXPECTED_AST_STRUCTURE', 'SYNTAX_ERROR', 'INCORRECT_DATA', 'TYPE_MISMATCH',
  'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
]);
const NOT_FOUND = new Set([
  'UNKNOWN_TABLE', 'UNKNOWN_FUNCTION', 'UNKNOWN_IDENTIFIER', 'UNKNOWN_TYPE', 'UNKNOWN_STORAGE',
  'UNKNOWN_DATABASE', 'UNKNOWN_SETTING', 'UNKNOWN_DIRECTION_OF_SORTING', 'UNKNOWN_AGGREGATE_FUNCTION',
  'UNKNOWN_FORMAT', 'UNKNOWN_DATABASE_ENGINE', 'UNKNOWN_TYPE_OF_QUERY', 'UNKNOWN_ROLE',
]);

export function httpStatusFor(exception: ClickHouseException): number {
  const type = exception.type ?? '';
  if (BAD_REQUEST.has(type)) return 400;
  if (NOT_FOUND.has(type)) return 404;
  if (type === 'QUERY_IS_TOO_LARGE') return 413;
  if (type === 'NOT_IMPLEMENTED') return 501;
  if (type === 'TIMEOUT_EXCEEDED') return 408;
  if (type === 'ACCESS_DENIED') return 403;
  return 500;
}
