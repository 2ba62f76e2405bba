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
  | 'OUTPUT_FAILED'
  | 'PARTITION_FENCED'
  | 'COMMIT_APPLIED'
  | 'STATE_CORRUPT'
  | 'STATE_DIVERGED'
  | 'STATE_LOG_MISMATCH'
  | 'ROW_ENCODING'
  | 'QUERY_FAILED'
  | 'REPLICA_ACK'
  | 'SERVICE_UNAVAILABLE'
  | 'TOPIC_MISSING'
  | 'PORT_UNAVAILABLE'
  | 'REFUSED'
  | 'BAD_QUERY'
  | 'NOT_FOUND';

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

/** An event that breaks the event rules (README.md, "Sending events"). `field` is the dotted path of the first offending field. */
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

/**
 * An input with lines, none of them a valid event: the wrong file, or the wrong `--format`.
 * Exit code 2 like an unreadable input, so a script does not take an empty output for success.
 */
export class NoValidEventsError extends SessionizerError {
  /** `expected`: what the input should have been, for the message. */
  constructor(path: string, lines: number, expected: string) {
    super('UNREADABLE_INPUT', `${path}: none of its ${lines} lines is a valid event; expected ${expected}`, { context: { path, lines } });
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

/** Another worker claimed the partition since we did: we must stop writing for it. */
export class PartitionFencedError extends SessionizerError {
  constructor(topic: string, partition: number, epoch: string) {
    super('PARTITION_FENCED', `partition ${topic}[${partition}] was claimed by another worker (our epoch ${epoch})`, {
      context: { topic, partition, epoch },
    });
  }
}

/** A state commit was refused because an earlier attempt of it (reply lost) already landed. */
export class CommitAlreadyAppliedError extends SessionizerError {
  constructor(topic: string, partition: number, rev: number) {
    super('COMMIT_APPLIED', `partition ${topic}[${partition}]: commit from rev ${rev} was already applied`, {
      context: { topic, partition, rev },
    });
  }
}

/**
 * A state commit found the partition's state not where this worker left it: Redis lost recent
 * writes (restored from an older copy, or a failover to a replica that lagged). Not a success:
 * the worker drops what it holds, claims the partition again and re-reads Kafka from the
 * state's applied offset, so nothing is lost.
 */
export class StateDivergedError extends SessionizerError {
  constructor(topic: string, partition: number, rev: number) {
    super('STATE_DIVERGED', `partition ${topic}[${partition}]: the state in Redis is not where this worker left it (expected rev ${rev}); re-reading Kafka from the state's offset`, {
      context: { topic, partition, rev },
    });
  }
}

/**
 * The partition's state in Redis belongs to another Kafka log than the one the worker reads:
 * the topic was re-created, or Kafka started afresh, with the state kept. Applying the new log
 * on top of it would skip or mis-number events, so the worker stops unless the operator chose
 * to reset such partitions (STATE_LOG_MISMATCH=reset).
 */
export class StateLogMismatchError extends SessionizerError {
  constructor(topic: string, partition: number, stateOffset: string, detail: string) {
    // One line an operator can act on: which partition, why, and the command that starts over.
    super(
      'STATE_LOG_MISMATCH',
      `partition ${topic}[${partition}]: the worker state in Redis (applied offset ${stateOffset}) belongs to another Kafka log: ${detail} ` +
        '(the topic was re-created, or Kafka started afresh while Redis kept its data). To start over on the new log, stop every worker ' +
        `of the pool and run "sessionizer reset --topics ${topic} --dry-run", then the same with --yes ` +
        '(or set STATE_LOG_MISMATCH=reset to do this automatically); docs/operations.md, "Starting over"',
      { context: { topic, partition, stateOffset } },
    );
  }
}

/** A stored state could not be decoded (written by an incompatible version, or damaged). */
export class StateCorruptError extends SessionizerError {
  constructor(key: string, cause: unknown) {
    super('STATE_CORRUPT', `cannot decode state ${key}: ${describeCause(cause)}`, { cause, context: { key } });
  }
}

/** A row value does not fit its ClickHouse column type: a bug in the row builder, not bad input. */
export class RowEncodingError extends SessionizerError {
  constructor(table: string, column: string, type: string, value: unknown) {
    super('ROW_ENCODING', `${table}.${column}: cannot write ${JSON.stringify(value) ?? String(value)} as ${type}`, {
      context: { table, column, type },
    });
  }
}

export type ServiceName = 'Kafka' | 'Redis' | 'ClickHouse';

/**
 * A service could not be reached (or refused our credentials) within the connect timeout. The
 * message is the one line an operator needs: which service, at which address, and what to check.
 * The underlying error stays in `cause` for the debug log.
 */
export class ServiceUnavailableError extends SessionizerError {
  readonly service: ServiceName;
  readonly address: string;

  constructor(service: ServiceName, address: string, reason: string, fix: string, cause?: unknown) {
    super('SERVICE_UNAVAILABLE', `cannot reach ${service} at ${address}: ${reason}. ${fix}`, {
      cause,
      retriable: true,
      context: { service, address },
    });
    this.service = service;
    this.address = address;
  }
}

/**
 * A port the command serves on cannot be bound: another process holds it (two workers, or a
 * worker and a collector, on one machine) or it needs privileges. Raised before anything
 * connects, so the command stops at once with this one line.
 */
export class PortUnavailableError extends SessionizerError {
  constructor(setting: string, port: number, reason: string, cause?: unknown) {
    const why =
      reason === 'EADDRINUSE'
        ? 'the port is in use (another sessionizer worker, collector or dashboard on this machine?)'
        : reason === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : reason === 'EADDRNOTAVAIL'
            ? 'no such address on this machine'
            : reason;
    super('PORT_UNAVAILABLE', `cannot listen on port ${port} (${setting}): ${why}. Set ${setting} to a free port`, { cause, context: { setting, port } });
  }
}

/** A topic the command needs does not exist, and we were not asked to create it. */
export class TopicMissingError extends SessionizerError {
  constructor(topics: readonly string[], brokers: string, partitions: number) {
    const list = topics.join(', ');
    super(
      'TOPIC_MISSING',
      `topic${topics.length > 1 ? 's' : ''} ${list} missing on Kafka at ${brokers}. Create ${topics.length > 1 ? 'them' : 'it'} ` +
        `(kafka-topics.sh --bootstrap-server ${brokers.split(',')[0]} --create --topic NAME --partitions ${partitions}), ` +
        'or set KAFKA_CREATE_TOPICS=true to let sessionizer create missing topics (fine locally)',
      { context: { topics } },
    );
  }
}

/** An operation refused for safety (a running consumer group, no confirmation flag...). */
export class RefusedError extends SessionizerError {
  constructor(message: string) {
    super('REFUSED', message);
  }
}
/**
 * A ClickHouse request failed. The message always says what was being done and why: the
 * server's own message, or — when there is none (a proxy's bare 414 or 502, say) — the HTTP
 * status, or the network error.
 */
export class ClickHouseQueryError extends SessionizerError {
  constructor(doing: string, reason: string, options: { status?: number; cause?: unknown } = {}) {
    super('QUERY_FAILED', `ClickHouse failed while ${doing}: ${reason}`, { cause: options.cause, context: { doing, status: options.status } });
  }
}

/**
 * Fewer Redis replicas than REDIS_WAIT_REPLICAS acknowledged a state commit in time. The commit
 * is on the master; it is only not yet known to be on a replica, so the Kafka offsets must not
 * be committed yet. Retriable: the replica may be back, or catch up, on the next try.
 */
export class ReplicaAckError extends SessionizerError {
  constructor(topic: string, partition: number, acknowledged: number, required: number, timeoutMs: number) {
    super(
      'REPLICA_ACK',
      `partition ${topic}[${partition}]: ${acknowledged} of ${required} Redis replicas acknowledged the state commit within ${timeoutMs} ms`,
      { retriable: true, context: { topic, partition, acknowledged, required, timeoutMs } },
    );
  }
}

/**
 * A Stats API query (or a dashboard page's query) that names something we do not know or
 * combines things that do not go together: answered 400 with this message. `field` names the
 * offending part of the query (`metrics`, `dimensions`, `filters`, …).
 */
export class InvalidStatsQueryError extends SessionizerError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('BAD_QUERY', message, { context: { field } });
    this.field = field;
  }
}

/**
 * A site that does not exist, or that the viewer may not see: the two answer alike (404 with
 * this message), so a viewer cannot learn which sites exist.
 */
export class SiteNotFoundError extends SessionizerError {
  constructor(site: string) {
    super('NOT_FOUND', `site '${site}' not found`, { context: { site } });
  }
}
