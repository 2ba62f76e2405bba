/** The worker's dead letters in its log: one summary line per minute at most, never one per message. */
import pino from 'pino';
import { Writable } from 'node:stream';
import { DeadLetterSummary } from '../../../src/worker/dead-letter-summary';

function capture(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = pino({ level: 'info' }, stream);
  return { log, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('DeadLetterSummary', () => {
  it('counts a minute of dead letters into one info line with the top reasons', () => {
    const { log, lines } = capture();
    let now = 0;
    const summary = new DeadLetterSummary(log, () => now);
    try {
      for (let i = 0; i < 500; i += 1) {
        now = i * 100; // 50 s of a bad producer
        summary.note('events', [
          i % 5 === 0 ? `not valid JSON (Unexpected token '${i}')` : 'timestamp: must be an ISO-8601 date-time with a zone',
          ...(i % 50 === 0 ? ['empty message', `anonymous_id: too long (${i})`] : []),
        ]);
      }
      expect(lines()).toEqual([]);
      now = 61_000;
      expect(summary.flushIfDue()).toBe(true);
      expect(lines()).toEqual([
        expect.objectContaining({
          level: 30,
          deadLetters: 520,
          seconds: 61,
          topics: { events: 520 },
          reasons: [
            { reason: 'timestamp: must be an ISO-8601 date-time with a zone', count: 400 },
            { reason: 'not valid JSON', count: 100 },
            { reason: 'anonymous_id: too long', count: 10 },
          ],
          otherReasons: 10,
          msg: '520 invalid messages sent to the dead-letter topic in the last 61 s; most often: timestamp: must be an ISO-8601 date-time with a zone (400), not valid JSON (100), anonymous_id: too long (10), 10 for other reasons',
        }),
      ]);
      // A quiet minute logs nothing; the next dead letter opens a new window.
      now = 200_000;
      expect(summary.flushIfDue()).toBe(false);
      summary.note('segment', ['event: is required for a track call']);
      now = 260_000;
      summary.note('segment', ['event: is required for a track call']);
      expect(lines()).toHaveLength(2);
      expect(lines()[1]).toMatchObject({ deadLetters: 1, topics: { segment: 1 } });
    } finally {
      summary.flush();
    }
  });
});
