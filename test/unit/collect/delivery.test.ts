/**
 * The delivery queue's contract with an in-memory sender (the real producer is exercised against
 * the broker in test/integration/collect-*.int.test.ts): requests that arrive while a produce is
 * in flight leave together, the queue is bounded, a failure refuses instead of accepting, an
 * acknowledgement that is late is refused, and a drain waits for what was accepted.
 */
import { Delivery, DeliveryUnavailableError } from '../../../src/collect/delivery';
import { MemorySender } from '../../support/collect-app';

function delivery(sender: MemorySender, overrides: Partial<ConstructorParameters<typeof Delivery>[1]> = {}): Delivery {
  return new Delivery(sender, { topic: 't', queueMaxEvents: 100, batchMaxEvents: 50, ackTimeoutMs: 1_000, cooldownMs: 200, ...overrides });
}
const ev = (i: number) => ({ key: `k${i}`, value: `{"i":${i}}` });

describe('Delivery', () => {
  it('batches requests that wait behind an in-flight produce', async () => {
    const sender = new MemorySender();
    sender.delayMs = 50;
    const d = delivery(sender);
    await Promise.all(Array.from({ length: 10 }, (_, i) => d.deliver([ev(i)])));
    expect(sender.sent).toHaveLength(10);
    expect(sender.sends).toBe(2);
    expect(d.producedTotal).toBe(10);
  });

  it('caps a produce request at batchMaxEvents', async () => {
    const sender = new MemorySender();
    sender.delayMs = 20;
    const d = delivery(sender, { batchMaxEvents: 3 });
    await Promise.all(Array.from({ length: 7 }, (_, i) => d.deliver([ev(i)])));
    expect(sender.sends).toBe(3); // 1 alone, then 3 and 3
  });

  it('refuses with queue_full beyond the bound', async () => {
    const sender = new MemorySender();
    sender.delayMs = 50;
    const d = delivery(sender, { queueMaxEvents: 5 });
    const first = d.deliver([ev(1), ev(2), ev(3), ev(4)]);
    await expect(d.deliver([ev(5), ev(6)])).rejects.toMatchObject({ reason: 'queue_full' });
    await first;
    await expect(d.deliver([ev(5), ev(6)])).resolves.toBeUndefined();
  });

  it('refuses with kafka_unavailable after a failure, for the cool-down', async () => {
    const sender = new MemorySender();
    sender.failing = true;
    const d = delivery(sender);
    await expect(d.deliver([ev(1)])).rejects.toBeInstanceOf(DeliveryUnavailableError);
    sender.failing = false;
    await expect(d.deliver([ev(2)])).rejects.toMatchObject({ reason: 'kafka_unavailable' });
    expect(d.available).toBe(false);
    await new Promise((r) => setTimeout(r, 250));
    await expect(d.deliver([ev(3)])).resolves.toBeUndefined();
    expect(sender.sent.map((m) => m.key)).toEqual(['k3']);
  });

  it('refuses with ack_timeout when Kafka is too slow', async () => {
    const sender = new MemorySender();
    sender.delayMs = 300;
    const d = delivery(sender, { ackTimeoutMs: 100 });
    await expect(d.deliver([ev(1)])).rejects.toMatchObject({ reason: 'ack_timeout' });
  });

  it('drains what was accepted, then refuses', async () => {
    const sender = new MemorySender();
    sender.delayMs = 50;
    const d = delivery(sender);
    const pending = [d.deliver([ev(1)]), d.deliver([ev(2)])];
    await d.drain();
    expect(sender.sent).toHaveLength(2);
    await Promise.all(pending);
    await expect(d.deliver([ev(3)])).rejects.toMatchObject({ reason: 'shutting_down' });
  });
});
