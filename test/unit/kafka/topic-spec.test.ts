/** How the project replicates the topics it creates, by cluster size. */
import { replicationFor } from '../../../src/kafka/topic-spec';

describe('replicationFor', () => {
  it('leaves one or two brokers to their defaults (nothing to replicate to, or no majority)', () => {
    expect(replicationFor(1)).toEqual({});
    expect(replicationFor(2)).toEqual({});
  });

  it('replicates 3 times with min.insync.replicas=2 from 3 brokers on', () => {
    for (const brokers of [3, 5, 12]) {
      expect(replicationFor(brokers)).toEqual({ replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '2' }] });
    }
  });
});
