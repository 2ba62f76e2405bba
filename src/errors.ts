/**
 * One error base class for the project. Every error we raise carries a `code` from a closed list,
 * the context needed to act on it, an optional `cause`, and whether retrying may help, so callers
 * (the CLI's exit codes, the worker's retry loop) decide by type and never by message text.
 */
export type ErrorCode =
  | 'INVALID_EVENT'
  | 'BAD_USAGE'
  | 'UNREADABLE_INPUT'
  | 'INVALID_CONFIG'
  | 'OUTPUT_FAILED';

export class SessionizerError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; retriable?: boolean; context?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.context = options.context ?? {};
  }
}

/** An event that breaks SPEC §1. `field` is the dotted path of the first offending field. */
export class InvalidEventError extends SessionizerError {
  readonly field: string;
  readonly reason: string;

  constructor(field: string, reason: string) {
    super('INVALID_EVENT', field ? `${field}: ${reason}` : reason, { context: { field } });
    this.field = field;
    this.reason = reason;
  }
}

/** The command line was used wrongly (exit code 2). */
export class UsageError extends SessionizerError {
  constructor(message: string) {
    super('BAD_USAGE', message);
  }
}

/** An input file or stream could not be read at all (exit code 2). */
export class UnreadableInputError extends SessionizerError {
  constructor(path: string, cause: unknown) {
    super('UNREADABLE_INPUT', `cannot read ${path}: ${describeCause(cause)}`, { cause, context: { path } });
  }
}

/** Configuration from the environment failed validation at start-up. */
export class InvalidConfigError extends SessionizerError {
  constructor(message: string) {
    super('INVALID_CONFIG', message);
  }
}

export function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return String(cause);
}
