/**
 * Takes a thrown-away consumer's member out of its group through the group's coordinator as it
 * is now, not the one the old consumer knew.
 *
 * Why: when the supervisor rebuilds a consumer because its coordinator died or froze, the old
 * consumer's own LeaveGroup goes to that dead coordinator and never arrives. The group (taken
 * over by a new coordinator) still lists the old member, so the next rebalance — the one our new
 * consumer's join starts — waits the whole rebalance timeout for a member that will never
 * rejoin. Measured with the coordinator frozen: the new consumer got its partitions 10–15 s
 * after it was built; with the old member taken out, the rebalance waits only for live ones.
 */
import type { Kafka } from 'kafkajs';
import { borrowCluster } from './borrowed-cluster';

/**
 * Sends LeaveGroup for `memberId` to `groupId`'s current coordinator. Resolves once the
 * coordinator took it, or answered that it does not know the member (it had left already);
 * rejects on anything else (the caller bounds and ignores it: this only saves time).
 */
export async function leaveGroupNow(kafka: Kafka, groupId: string, memberId: string): Promise<void> {
  const cluster = borrowCluster(kafka);
  try {
    await cluster.connect();
    const coordinator = await cluster.findGroupCoordinator({ groupId });
    await coordinator.leaveGroup({ groupId, memberId });
  } catch (err) {
    if ((err as { type?: unknown } | null)?.type !== 'UNKNOWN_MEMBER_ID') throw err;
  } finally {
    void cluster.disconnect().catch(() => undefined);
  }
}
