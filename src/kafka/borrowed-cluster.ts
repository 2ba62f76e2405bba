/**
 * kafkajs' own cluster object (connections, metadata, coordinator lookup), borrowed from a
 * `Kafka` instance for the few requests its public API lacks: topic ids, and taking a member out
 * of its group through the coordinator as it is now. It is private to kafkajs, so only what we
 * use is typed, and a kafkajs without it fails loudly here rather than somewhere deeper.
 */
import type { Kafka } from 'kafkajs';

export interface BorrowedConnection {
  send(options: { request: unknown; response: unknown }): Promise<unknown>;
}

export interface BorrowedBroker {
  nodeId: number;
  leaveGroup(request: { groupId: string; memberId: string }): Promise<unknown>;
}

export interface BorrowedCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(request: { groupId: string }): Promise<BorrowedBroker>;
  brokerPool: { seedBroker?: { connectionPool: { getConnection(): Promise<BorrowedConnection> } } };
}

/** A new, unconnected cluster of `kafka`'s configuration (brokers, timeouts, retries, logging). */
export function borrowCluster(kafka: Kafka): BorrowedCluster {
  const create = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (!create) throw new Error('this kafkajs version has no cluster factory to borrow');
  const factory = (kafka as unknown as Record<symbol, (options: object) => BorrowedCluster>)[create] as (options: object) => BorrowedCluster;
  return factory.call(kafka, { allowAutoTopicCreation: false });
}
