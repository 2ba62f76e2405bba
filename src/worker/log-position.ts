/**
 * Where a worker starts reading a partition it has just claimed, from two witnesses that can
 * disagree: the partition's state in Redis (the last offset it applied) and Kafka (the log's
 * first and next offsets, the group's committed offset). Pure: no I/O.
 *
 * The state is the truth about what was applied; Kafka's committed offset is only a hint, so
 * the worker always reads on from the state, never from the group:
 *   - state behind the committed offset (Redis lost recent writes: restored from an older copy,
 *     or a failover to a replica that lagged): read again from the state's offset + 1, so the
 *     events of the lost writes are applied again and nothing is lost;
 *   - state ahead of the log's end: the state belongs to another log (the topic was re-created,
 *     or Kafka started afresh): a mismatch, never applied on top;
 *   - the message at the state's offset still in the log: read from it (not after it), so the
 *     first batch shows whether it is the message the state last applied (its fingerprint);
 *   - the state's next offset already deleted by retention: read from the log's start, and say
 *     how many messages were deleted before they were applied.
 */
import { createHash } from 'node:crypto';

export interface LogBounds {
  /** First offset still in the log. */
  low: bigint;
  /** Offset the next message will get (the high watermark). */
  high: bigint;
  /** The consumer group's committed offset (the next to read), -1 when none. */
  committed: bigint;
}

export interface StatePosition {
  /** Last applied offset, -1 when nothing was applied. */
  offset: bigint;
  /** Fingerprint of the message at `offset`, "" when unknown. */
  fingerprint: string;
}

export type StartDecision =
  | {
      kind: 'read';
      /** Where the consumer must seek to. */
      from: bigint;
      /** When set, the first message read must be at this offset with this fingerprint. */
      verify: { offset: bigint; fingerprint: string } | null;
      /** Messages the state missed although the group had committed them (reapplied now). */
      rewound: bigint;
      /** Messages deleted from the log (retention) before they were applied. */
      deletedUnapplied: bigint;
    }
  | { kind: 'mismatch'; detail: string };

export function decideStart(state: StatePosition, log: LogBounds): StartDecision {
  if (state.offset >= log.high) {
    return {
      kind: 'mismatch',
      detail: `the log ends at offset ${log.high - 1n} (next ${log.high}) but the state has applied offset ${state.offset}`,
    };
  }
  let from = state.offset + 1n;
  let deletedUnapplied = 0n;
  if (from < log.low) {
    deletedUnapplied = log.low - from;
    from = log.low;
  }
  const rewound = log.committed > state.offset + 1n ? log.committed - (state.offset + 1n) : 0n;
  const canVerify = state.fingerprint !== '' && state.offset >= log.low && state.offset >= 0n;
  if (canVerify) return { kind: 'read', from: state.offset, verify: { offset: state.offset, fingerprint: state.fingerprint }, rewound, deletedUnapplied };
  return { kind: 'read', from, verify: null, rewound, deletedUnapplied };
}

/**
 * What identifies a message within its partition's log: its offset and a hash of its key and
 * value. A re-created topic has other messages at the same offsets.
 */
export function messageFingerprint(message: { offset: string; key: Buffer | null; value: Buffer | null }): string {
  const hash = createHash('sha1');
  hash.update(String(message.key?.length ?? -1));
  hash.update(':');
  if (message.key) hash.update(message.key);
  if (message.value) hash.update(message.value);
  return `${message.offset}:${hash.digest('hex').slice(0, 16)}`;
}
