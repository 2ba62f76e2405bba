/**
 * docs/segment.md stays true: every worked example (a Segment message, then the event it
 * "becomes") is what the mapping gives, with the key-event list the page states.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { segmentToEvent } from '../../../src/events/segment';
import { recompute } from '../../../src/recompute/recompute';

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

  it('examples/segment.ndjson holds the inputs of the examples, one per line', () => {
    const file = readFileSync(join(__dirname, '..', '..', '..', 'examples', 'segment.ndjson'), 'utf8');
    expect(file.split('\n').filter(Boolean).map((line) => JSON.parse(line))).toEqual(blocks.filter((_, i) => i % 2 === 0));
  });

  it('recompute of examples/segment.ndjson gives the four sessions the page describes', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString();
        done();
      },
    });
    const input = createReadStream(join(__dirname, '..', '..', '..', 'examples', 'segment.ndjson'));
    const stats = await recompute(input, sink, { timeoutMs: 30 * 60_000, threads: 0, input: { format: 'segment', keyEvents: ['Order Completed'] } });
    expect(stats).toMatchObject({ lines: 7, events: 7, invalid: 0, sessions: 4, users: 3 });
    const sessions = out.split('\n').filter(Boolean).map((line) => JSON.parse(line));
    expect(sessions.map((s) => [s.user_key, s.user_id, s.events, s.source, s.is_engaged, s.session_number])).toEqual([
      ['a-5b1e', 'u-1042', 4, 'newsletter', 1, 1],
      ['ios-9c4d', '', 1, 'facebook', 0, 1],
      ['u-1042', 'u-1042', 1, '(direct)', 0, 1],
      ['u-1042', 'u-1042', 1, '(direct)', 1, 2],
    ]);
  });

  it.each(titles.map((title, i) => [title, i] as const))('%s', (_title, i) => {
    const result = segmentToEvent(blocks[2 * i], { keyEvents: ['Order Completed'] });
    if (!result.ok) throw result.error;
    expect(result.event).toEqual(blocks[2 * i + 1]);
  });
});
