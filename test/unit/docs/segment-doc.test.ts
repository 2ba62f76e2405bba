/**
 * docs/segment.md stays true: every worked example (a Segment message, then the event it
 * "becomes") is what the mapping gives, with the key-event list the page states.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { segmentToEvent } from '../../../src/events/segment';

const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'segment.md'), 'utf8');
const examples = doc.slice(doc.indexOf('## Worked examples'));
const blocks = [...examples.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => JSON.parse(m[1] as string) as Record<string, unknown>);
const titles = [...examples.matchAll(/^### (.+)$/gm)].map((m) => m[1] as string);

describe('docs/segment.md worked examples', () => {
  it('has one input and one result per example, for each call type', () => {
    expect(blocks.length).toBe(titles.length * 2);
    const types = new Set(blocks.filter((_, i) => i % 2 === 0).map((b) => b.type));
    expect([...types].sort()).toEqual(['alias', 'group', 'identify', 'page', 'screen', 'track']);
  });

  it.each(titles.map((title, i) => [title, i] as const))('%s', (_title, i) => {
    const result = segmentToEvent(blocks[2 * i], { keyEvents: ['Order Completed'] });
    if (!result.ok) throw result.error;
    expect(result.event).toEqual(blocks[2 * i + 1]);
  });
});
