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
  private readonly userPrefix: string;

  constructor(prefix: string, topic: string, partition: number) {
    const tag = `{${prefix}:${topic}:${partition}}`;
    this.meta = `${tag}:meta`;
    this.closeDeadlines = `${tag}:close`;
    this.forgetDeadlines = `${tag}:forget`;
    this.outbox = `${tag}:outbox`;
    this.userPrefix = `${tag}:u:`;
  }

  user(userKey: string): string {
    return this.userPrefix + userKey;
  }
}
