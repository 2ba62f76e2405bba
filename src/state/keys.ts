import { createHash } from 'node:crypto';

/**
 * Every Redis key the worker uses, built here from one prefix. All keys of a partition carry
 * the hash tag `{prefix:topic:partition}`, so each script's keys fall in one Redis Cluster slot.
 * A user's state lives under the partition its events arrive on (producers key by user key).
 */
export class PartitionKeys {
  readonly meta: string;
  readonly closeDeadlines: string;
  readonly forgetDeadlines: string;
  readonly outbox: string;
  /** Users whose ClickHouse rows are to be checked after the state lost commits. */
  readonly repair: string;
  /** Per `user NUL session id`: the row the state held when the repair first touched the user. */
  readonly repairBase: string;
  /** Per `user NUL session id`: the last row written for it while repairing ("" = retracted). */
  readonly repairWrites: string;
  /**
   * Prefix of the partition's idle-record buckets, `{prefix:topic:partition}:i:<n>`: hashes of
   * the records of users whose sessions were all forgotten (scripts/_idle.lua).
   */
  readonly idle: string;
  /** `{prefix:topic:partition}`: every key of the partition starts with it. */
  readonly tag: string;
  private readonly userPrefix: string;

  constructor(prefix: string, topic: string, partition: number) {
    const tag = `{${prefix}:${topic}:${partition}}`;
    this.tag = tag;
    this.meta = `${tag}:meta`;
    this.closeDeadlines = `${tag}:close`;
    this.forgetDeadlines = `${tag}:forget`;
    this.outbox = `${tag}:outbox`;
    this.repair = `${tag}:repair`;
    this.repairBase = `${tag}:repair:base`;
    this.repairWrites = `${tag}:repair:writes`;
    this.idle = `${tag}:i:`;
    this.userPrefix = `${tag}:u:`;
  }

  user(userKey: string): string {
    return this.userPrefix + userKey;
  }
}

/** `text` as a literal in a Redis MATCH pattern, so a prefix or topic matches only itself. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * The deduplication token of an outbox entry's insert, the same for the worker and for
 * recalculation flushing it on the worker's behalf (so the entry lands once). It names the
 * entry by the partition's log generation, sequence number and content: a sequence number made
 * again after the state went back in time (other rows) is not mistaken for the first one.
 */
export function outboxToken(topic: string, partition: number, generation: string, seq: number, payload: string | Buffer): string {
  const digest = createHash('sha1').update(payload).digest('hex').slice(0, 16);
  return `${topic}:${partition}:${generation}:outbox:${seq}:${digest}`;
}
