/** KAFKA_SEGMENT_TOPICS and KEY_EVENTS in the configuration. */
import { InvalidConfigError } from '../../../src/errors';
import { loadConfig } from '../../../src/config';

describe('Segment settings', () => {
  it('none by default: only KAFKA_TOPICS, no key events', () => {
    const config = loadConfig({});
    expect(config.kafka.topics).toEqual(['events']);
    expect(config.kafka.segmentTopics).toEqual([]);
    expect(config.keyEvents).toEqual([]);
  });

  it('Segment topics are consumed after KAFKA_TOPICS by the same group', () => {
    const config = loadConfig({ KAFKA_TOPICS: 'events,orders', KAFKA_SEGMENT_TOPICS: ' segment.web , segment.app,segment.web', KAFKA_GROUP_ID: 'g' });
    expect(config.kafka.topics).toEqual(['events', 'orders', 'segment.web', 'segment.app']);
    expect(config.kafka.segmentTopics).toEqual(['segment.web', 'segment.app']);
    expect(config.kafka.groupId).toBe('g');
  });

  it('refuses a topic that is in both lists', () => {
    expect(() => loadConfig({ KAFKA_TOPICS: 'events,segment', KAFKA_SEGMENT_TOPICS: 'segment' })).toThrow(InvalidConfigError);
    expect(() => loadConfig({ KAFKA_TOPICS: 'events,segment', KAFKA_SEGMENT_TOPICS: 'segment' })).toThrow(/segment is in both/);
  });

  it('KEY_EVENTS is a comma list of names that may hold spaces', () => {
    expect(loadConfig({ KEY_EVENTS: 'Order Completed, Signed Up,,' }).keyEvents).toEqual(['Order Completed', 'Signed Up']);
  });
});
