/**
 * `recompute` of Segment Spec messages (`input: { format: 'segment' }`): it reads each line
 * through the Segment mapping, so its sessions equal those of our own events the messages map
 * to; invalid messages are counted and reported with their line numbers like invalid events;
 * and the worker-thread path agrees with the in-process path.
 */
import { Readable, Writable } from 'node:stream';
import { InvalidEventError } from '../../../src/errors';
import { segmentToEvent } from '../../../src/events/segment';
import { generateTraffic } from '../../../src/loadgen/traffic';
import { recompute, type RecomputeOptions, type RecomputeStats } from '../../../src/recompute/recompute';
import { KEY_EVENT_NAMES, toSegmentMessages } from '../../support/segment-traffic';

jest.setTimeout(120_000);

const T = 30 * 60_000;

async function run(lines: readonly string[], options: Partial<RecomputeOptions> = {}) {
  let output = '';
  const invalid: Array<{ line: number; error: InvalidEventError }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      output += chunk.toString();
      done();
    },
  });
  const stats: RecomputeStats = await recompute(Readable.from(lines.map((l) => l + '\n')), sink, {
    timeoutMs: T,
    threads: 0,
    onInvalid: (line, _text, error) => void invalid.push({ line, error }),
    ...options,
  });
  return { output, stats, invalid };
}

const events = [...generateTraffic({ users: 300, startMs: Date.UTC(2024, 4, 1), spanMs: 6 * 3_600_000, duplicateRate: 0.02, disorderMs: 60_000, seed: 5, idPrefix: 'g-' })];
const messages = toSegmentMessages(events, 9, 0.02);
const lines = messages.map((m) => m.value);
const segment = { format: 'segment', keyEvents: KEY_EVENT_NAMES } as const;

describe('recompute --format segment', () => {
  it('equals recompute of the events the messages map to', async () => {
    const mappedLines: string[] = [];
    for (const line of lines) {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        continue;
      }
      const result = segmentToEvent(json, { keyEvents: KEY_EVENT_NAMES });
      if (result.ok) mappedLines.push(JSON.stringify(result.event));
    }
    const fromSegment = await run(lines, { input: segment });
    const fromEvents = await run(mappedLines);
    expect(fromSegment.stats.sessions).toBeGreaterThan(300);
    expect(fromSegment.output).toBe(fromEvents.output);
    expect(fromSegment.stats.events).toBe(fromEvents.stats.events);
  });

  it('takes key events by name from the list it is given', async () => {
    const order = JSON.stringify({ type: 'track', event: 'Order Completed', messageId: 'k', userId: 'u', timestamp: '2024-05-01T00:00:00Z' });
    expect(JSON.parse((await run([order], { input: segment })).output).is_engaged).toBe(1);
    expect(JSON.parse((await run([order], { input: { format: 'segment' } })).output).is_engaged).toBe(0);
  });

  it('counts and reports each invalid message with its line number and reason', async () => {
    const { stats, invalid } = await run(lines, { input: segment });
    const expected = messages.flatMap((m, i) => (m.valid ? [] : [i + 1]));
    expect(expected.length).toBeGreaterThan(5);
    expect(stats.invalid).toBe(expected.length);
    expect(invalid.map((i) => i.line)).toEqual(expected);
    for (const { error } of invalid) expect(error.message).not.toBe('');
    expect(invalid.map((i) => i.error.message)).toEqual(expect.arrayContaining(['event: is required for a track call', 'messageId: is required']));
  });

  it('reads own-format events as invalid Segment messages, and the reverse', async () => {
    const own = JSON.stringify({ event_id: 'e', type: 'page_view', timestamp: '2024-05-01T00:00:00Z', anonymous_id: 'a' });
    expect((await run([own], { input: segment })).invalid[0]?.error.field).toBe('type');
    expect((await run([lines[0] as string])).stats.invalid).toBe(1);
  });

  it('gives the same output with worker threads', async () => {
    const inProcess = await run(lines, { input: segment });
    const threaded = await run(lines, { input: segment, threads: 2 });
    expect(threaded.output).toBe(inProcess.output);
    expect(threaded.invalid.map((i) => [i.line, i.error.message])).toEqual(inProcess.invalid.map((i) => [i.line, i.error.message]));
  });

  it('keeps odd characters decoded from URLs intact (newlines, separators) on both paths', async () => {
    const odd = [0, 1, 2].map((i) =>
      JSON.stringify({
        type: 'page',
        messageId: `odd-${i}`,
        anonymousId: 'odd',
        timestamp: `2024-05-01T00:0${i}:00Z`,
        properties: { url: 'https://s.example/?utm_source=a%0Ab&utm_medium=x%1Fy&utm_campaign=%1Bz' },
      }),
    );
    const inProcess = await run(odd, { input: segment, maxBufferedEvents: 1 });
    const threaded = await run(odd, { input: segment, threads: 2 });
    expect(threaded.output).toBe(inProcess.output);
    expect(JSON.parse(inProcess.output)).toMatchObject({ source: 'a\nb', medium: 'x\u001fy', campaign: '\u001bz' });
  });
});
