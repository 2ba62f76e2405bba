/**
 * Requests to a consumer group's coordinator as it is now, not the one a consumer knew: kafkajs'
 * consumer keeps talking to the coordinator it found at its join, dead or frozen, until a
 * request to it times out or fails.
 *
 * - `leaveGroupNow` takes a thrown-away consumer's member out of its group. When the supervisor
 *   rebuilds a consumer because its coordinator died or froze, the old consumer's own LeaveGroup
 *   goes to that dead coordinator and never arrives. The group (taken over by a new coordinator)
 *   still lists the old member, so the next rebalance — the one our new consumer's join starts —
 *   waits the whole rebalance timeout for a member that will never rejoin. Measured with the
 *   coordinator frozen: the new consumer got its partitions 10–15 s after it was built; with the
 *   old member taken out, the rebalance waits only for live ones.
 * - `coordinatorIdNow` names the coordinator, so that a member whose heartbeats go unanswered
 *   can tell a slow rebalance (same coordinator) from a coordinator the cluster has replaced.
 */
import type { Kafka } from 'kafkajs';
import { borrowCluster, type BorrowedBroker } from './borrowed-cluster';

async function withCoordinator<T>(kafka: Kafka, groupId: string, request: (coordinator: BorrowedBroker) => Promise<T>): Promise<T> {
  const cluster = borrowCluster(kafka);
  try {
    await cluster.connect();
    return await request(await cluster.findGroupCoordinator({ groupId }));
  } finally {
    void cluster.disconnect().catch(() => undefined);
  }
}

/**
 * Sends LeaveGroup for `memberId` to `groupId`'s current coordinator. Resolves once the
 * coordinator took it, or answered that it does not know the member (it had left already);
 * rejects on anything else (the caller bounds and ignores it: this only saves time).
 */
export async function leaveGroupNow(kafka: Kafka, groupId: string, memberId: string): Promise<void> {
  try {
    await withCoordinator(kafka, groupId, (coordinator) => coordinator.leaveGroup({ groupId, memberId }));
  } catch (err) {
    if ((err as { type?: unknown } | null)?.type !== 'UNKNOWN_MEMBER_ID') throw err;
  }
}

/** The node id of `groupId`'s coordinator, as a broker that answers names it now. */
export function coordinatorIdNow(kafka: Kafka, groupId: string): Promise<number> {
  return withCoordinator(kafka, groupId, async (coordinator) => coordinator.nodeId);
}
