/**
 * How the project creates topics (KAFKA_CREATE_TOPICS=true: the worker's event and dead-letter
 * topics, `produce`, `loadgen`). On a cluster of 3 brokers or more: replication factor 3 and
 * `min.insync.replicas=2`, so with every producer's `acks=all` an acknowledged event is on two
 * brokers at least and one broker can be lost (or restarted) without losing or refusing writes.
 * With fewer brokers there is nothing to replicate to: the broker's defaults apply.
 */
import type { Admin, ITopicConfig } from 'kafkajs';

export interface TopicReplication {
  replicationFactor?: number;
  configEntries?: Array<{ name: string; value: string }>;
}

/** The replication of a new topic on a cluster of `brokers` brokers. */
export function replicationFor(brokers: number): TopicReplication {
  if (brokers < 3) return {};
  return { replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '2' }] };
}

/** Creates the topics with `partitions` partitions, replicated as `replicationFor` says for the cluster. */
export async function createTopics(admin: Admin, topics: readonly string[], partitions: number): Promise<{ created: boolean; replication: TopicReplication }> {
  const { brokers } = await admin.describeCluster();
  const replication = replicationFor(brokers.length);
  const specs: ITopicConfig[] = topics.map((topic) => ({ topic, numPartitions: partitions, ...replication }));
  const created = await admin.createTopics({ waitForLeaders: true, topics: specs });
  return { created, replication };
}
