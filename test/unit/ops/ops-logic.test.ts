/** Pure pieces of `reset` and `dead-letters`: which keys belong to a topic, selections, safe printing. */
import { firstPerSource, formatDeadLetterTable, parsePositions, printable, runDeadLettersList, selects, siteOfDeadLetter, toDeadLetter } from '../../../src/commands/dead-letters-command';
import { groupPartitionKeys } from '../../../src/ops/state-keys';

describe('groupPartitionKeys', () => {
  it('keeps the keys of the topic, by partition, and counts users and the outbox', () => {
    const keys = ['{sz:ev:0}:meta', '{sz:ev:0}:u:a', '{sz:ev:0}:u:b:c', '{sz:ev:0}:outbox', '{sz:ev:11}:close', '{sz:ev:x}:meta', '{sz:ev:1', '{sz:events:0}:meta'];
    const sets = groupPartitionKeys('sz', 'ev', keys);
    expect(sets.map((s) => [s.partition, s.keys.length, s.users, s.outboxKey])).toEqual([
      [0, 4, 2, '{sz:ev:0}:outbox'],
      [11, 1, 0, null],
    ]);
  });

  it('keeps the idle-record buckets apart (their records are counted by HLEN when scanning)', () => {
    const sets = groupPartitionKeys('sz', 'ev', ['{sz:ev:0}:u:a', '{sz:ev:0}:i:0', '{sz:ev:0}:i:17', '{sz:ev:0}:u:i:x']);
    expect(sets.map((s) => [s.partition, s.keys.length, s.users, s.idleKeys])).toEqual([[0, 4, 2, ['{sz:ev:0}:i:0', '{sz:ev:0}:i:17']]]);
  });
});

describe('dead letters', () => {
  const letter = toDeadLetter({
    partition: 2,
    offset: '17',
    timestamp: String(Date.UTC(2026, 0, 2, 3, 4, 5)),
    key: Buffer.from('k'),
    value: Buffer.from('{"bad":"\u001b[31m"}'),
    headers: {
      'x-sessionizer-error': Buffer.from('timestamp: expected an ISO-8601 date-time'),
      'x-sessionizer-error-field': Buffer.from('timestamp'),
      'x-sessionizer-source-topic': Buffer.from('events'),
      'x-sessionizer-source-partition': Buffer.from('5'),
      'x-sessionizer-source-offset': Buffer.from('99'),
    },
  });

  it('reads reason and source from the headers', () => {
    expect(letter).toMatchObject({ partition: 2, offset: '17', time: '2026-01-02T03:04:05.000Z', key: 'k', field: 'timestamp', source: { topic: 'events', partition: 5, offset: '99' } });
  });

  it('selects by reason (any case), source topic and position', () => {
    expect(selects({ reason: 'ISO-8601' })(letter)).toBe(true);
    expect(selects({ reason: 'iso-8601', sourceTopic: 'other' })(letter)).toBe(false);
    expect(selects({ at: ['2:17'] })(letter)).toBe(true);
    expect(selects({ at: ['2:18'] })(letter)).toBe(false);
    expect(parsePositions('0:1, 3:7')).toEqual(['0:1', '3:7']);
    expect(() => parsePositions('3-7')).toThrow(/PARTITION:OFFSET/);
  });

  it('shows a message sent twice (a batch read again before its commit) once, and keeps letters of unknown source', () => {
    const again = { ...letter, partition: 0, offset: '40' };
    const other = { ...letter, offset: '18', source: { ...letter.source, offset: '100' } };
    const unknown = { ...letter, offset: '19', source: { topic: '', partition: null, offset: '' } };
    expect(firstPerSource([letter, other, again, unknown, { ...unknown, offset: '20' }]).map((l) => `${l.partition}:${l.offset}`)).toEqual(['2:17', '2:18', '2:19', '2:20']);
  });

  it("belongs to the event's own site, else its source topic's, else default; selected by --site", () => {
    const topicSites = new Map([['shop-events', 'shop']]);
    expect(letter.site).toBe('default');
    expect(siteOfDeadLetter('{"site":"blog","timestamp":"x"}', 'shop-events', topicSites)).toBe('blog');
    expect(siteOfDeadLetter('{"timestamp":"x"}', 'shop-events', topicSites)).toBe('shop');
    // Not JSON, or a site that is not a site name: the topic decides.
    expect(siteOfDeadLetter('not json', 'shop-events', topicSites)).toBe('shop');
    expect(siteOfDeadLetter('{"site":"Not A Site"}', 'events', topicSites)).toBe('default');
    expect(siteOfDeadLetter('[1]', 'events')).toBe('default');
    expect(selects({ site: 'default' })(letter)).toBe(true);
    expect(selects({ site: 'shop' })(letter)).toBe(false);
    const shopLetter = toDeadLetter({ partition: 0, offset: '1', timestamp: '0', key: null, value: Buffer.from('{}'), headers: { 'x-sessionizer-source-topic': Buffer.from('shop-events') } }, topicSites);
    expect(selects({ site: 'shop' })(shopLetter)).toBe(true);
  });

  it('refuses a bad --site before reading anything (exit 2)', async () => {
    await expect(runDeadLettersList({ format: 'table', site: 'No Site' })).rejects.toThrow(/dead-letters list: --site 'No Site' is not a site name/);
  });

  it('never prints control characters, and cuts long values', () => {
    const table = formatDeadLetterTable([letter]);
    expect(table).not.toMatch(/\u001b/); // eslint-disable-line no-control-regex
    expect(table).toContain('\\u001b[31m');
    expect(table).toContain('events[5]@99');
    expect(printable('x'.repeat(100), 10)).toBe(`${'x'.repeat(9)}…`);
  });
});
