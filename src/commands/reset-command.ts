/**
 * `sessionizer reset (--dry-run | --yes) [--topics a,b] [--offsets]`: starts a worker pool over,
 * like Kafka Streams' application reset tool: it deletes the pool's state in Redis for the given
 * topics (every key with a partition's hash tag: users' states, idle-record buckets, close and
 * forget queues, outbox, repair log and meta hash; on a Redis Cluster, from every master), and with
 * `--offsets` moves the consumer group's committed offsets back to the earliest, so the next
 * worker re-reads the topics from their start.
 *
 * With `--yes` it refuses while the group has members: a running worker would write the state
 * back. Nothing happens without `--yes`; `--dry-run` only reads, so it works while workers run,
 * and prints what would be deleted and moved.
 *
 * ClickHouse is left alone: sessions already written stay. To rebuild them from the topics,
 * empty the session tables first (docs/operations.md says how), or keep them and recalculate.
 */
import type { Kafka } from 'kafkajs';
import { loadConfig, type Config } from '../config';
import { RefusedError, UsageError } from '../errors';
import { createKafka } from '../kafka/kafka-client';
import { createLogger, secretsOf } from '../observability/logger';
import { scanPartitionKeys, unlinkKeys, type PartitionKeySet } from '../ops/state-keys';
import { preflight } from '../preflight';
import { createRedisClient } from '../state/redis-client';

export interface ResetCommandOptions {
  dryRun?: boolean;
  yes?: boolean;
  /** Topics to reset; KAFKA_TOPICS by default. */
  topics?: string[];
  /** Also move the group's offsets on these topics to the earliest. */
  offsets?: boolean;
}

export interface ResetPlan {
  groupId: string;
  partitions: PartitionKeySet[];
  pendingOutboxEntries: number;
  /** Committed offsets now, per topic and partition ("-1": none), when --offsets. */
  offsets: Array<{ topic: string; partition: number; committed: string; earliest: string }>;
}

export interface ResetResult {
  plan: ResetPlan;
  executed: boolean;
  keysDeleted: number;
}

export async function runReset(options: ResetCommandOptions, deps: { config?: Config; write?: (text: string) => void } = {}): Promise<ResetResult> {
  if (!options.dryRun && !options.yes) {
    throw new UsageError('reset deletes the worker state: run it with --dry-run to see what it would delete, then with --yes');
  }
  if (options.dryRun && options.yes) throw new UsageError('reset: --dry-run and --yes exclude each other');
  const config = deps.config ?? loadConfig();
  const write = deps.write ?? ((text: string) => void process.stdout.write(text));
  const topics = options.topics ?? config.kafka.topics;
  const log = createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'reset' });
  await preflight(config, { kafka: { topics }, redis: true }, log);

  const kafka: Kafka = createKafka(config.kafka, log, { quiet: true });
  const admin = kafka.admin();
  const redis = createRedisClient(config.redis, { maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined); // a failing command rejects with the reason
  await admin.connect();
  try {
    const groupId = config.kafka.groupId;
    const [group] = (await admin.describeGroups([groupId])).groups;
    const members = group?.members ?? [];
    // Only --yes needs the pool stopped (a running worker would write its state back); a dry
    // run only reads, so it works while the workers run and says what --yes would need.
    const running = members.length > 0 ? `consumer group ${groupId} has ${members.length} active member(s) (${[...new Set(members.map((m) => m.clientHost))].join(', ')})` : '';
    if (running && !options.dryRun) throw new RefusedError(`${running}; stop every worker of the pool first`);

    const partitions: PartitionKeySet[] = [];
    for (const topic of topics) partitions.push(...(await scanPartitionKeys(redis, config.redis.keyPrefix, topic)));
    let pendingOutboxEntries = 0;
    for (const p of partitions) if (p.outboxKey) pendingOutboxEntries += await redis.hlen(p.outboxKey);
    const offsets: ResetPlan['offsets'] = [];
    if (options.offsets) {
      for (const topic of topics) {
        const earliest = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o.low]));
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        for (const p of committed?.partitions ?? []) offsets.push({ topic, partition: p.partition, committed: p.offset, earliest: earliest.get(p.partition) ?? '0' });
      }
    }
    const plan: ResetPlan = { groupId, partitions, pendingOutboxEntries, offsets };
    write(describePlan(plan, config.redis.keyPrefix, topics, options));
    if (options.dryRun) {
      if (running) write(`reset: ${running}: stop every worker of the pool before --yes\n`);
      write('reset: dry run, nothing changed; run again with --yes to do it\n');
      return { plan, executed: false, keysDeleted: 0 };
    }

    // One partition at a time: its keys share a hash tag, so one UNLINK stays in one cluster slot.
    let keysDeleted = 0;
    for (const p of partitions) keysDeleted += await unlinkKeys(redis, p.keys);
    // Explicit offsets (each partition's current start), not kafkajs' resetOffsets: that commits
    // the sentinel -2, which other tools show as an offset and which only kafkajs understands.
    if (options.offsets) {
      for (const topic of topics) {
        const partitions = (await admin.fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, offset: o.low }));
        await admin.setOffsets({ groupId, topic, partitions });
      }
    }
    write(`reset: deleted ${keysDeleted} Redis keys${options.offsets ? `; group ${groupId} will read ${topics.join(', ')} from the earliest offsets` : ''}\n`);
    return { plan, executed: true, keysDeleted };
  } finally {
    await admin.disconnect().catch(() => undefined);
    redis.disconnect();
  }
}

export function describePlan(plan: ResetPlan, prefix: string, topics: readonly string[], options: ResetCommandOptions): string {
  const lines: string[] = [];
  const keys = plan.partitions.reduce((n, p) => n + p.keys.length, 0);
  const users = plan.partitions.reduce((n, p) => n + p.users, 0);
  lines.push(`reset: group ${plan.groupId}, topics ${topics.join(', ')}, Redis key prefix ${prefix}`);
  lines.push(`  Redis: ${keys} keys in ${plan.partitions.length} partitions (${users} users' state) would be deleted`);
  for (const p of plan.partitions) lines.push(`    ${p.topic}[${p.partition}]: ${p.keys.length} keys, ${p.users} users`);
  if (plan.pendingOutboxEntries > 0) {
    lines.push(`  warning: ${plan.pendingOutboxEntries} outbox entries hold session rows not confirmed in ClickHouse; they would be lost`);
  }
  if (options.offsets) {
    lines.push(`  Kafka: offsets of group ${plan.groupId} would move to the earliest:`);
    for (const o of plan.offsets) lines.push(`    ${o.topic}[${o.partition}]: ${o.committed === '-1' ? 'none' : o.committed} -> ${o.earliest}`);
  } else {
    lines.push('  Kafka: offsets unchanged (add --offsets to re-read the topics from the start)');
  }
  return lines.join('\n') + '\n';
}
