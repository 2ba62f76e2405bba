/**
 * What replaying history does to a partition's event-time watermark, and so which events the
 * worker applies and which it keeps as late (docs/recalculation.md, "Backfilling history"): the
 * watermark is the newest event time seen, capped at wall clock + MAX_CLOCK_SKEW_MINUTES; an
 * event more than ALLOWED_LATENESS_MINUTES behind the watermark at its arrival is late.
 */
import { applyEvent, newKeyState, type EngineConfig } from '../../../src/engine/engine';
import { planBatch, type IncomingMessage } from '../../../src/worker/batch-plan';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const now = Date.parse('2026-06-01T12:00:00Z');
const skewMs = 5 * MINUTE;
const engine: EngineConfig = { timeoutMs: 30 * MINUTE, latenessMs: 60 * MINUTE };

function message(offset: number, id: string, at: number): IncomingMessage {
  return { offset: String(offset), key: null, value: Buffer.from(JSON.stringify({ event_id: id, type: 'page_view', timestamp: at, anonymous_id: id })) };
}

/** The outcome of each message in one batch, from a partition whose watermark was `before`. */
function outcomes(times: number[], before = -Infinity): { outcomes: string[]; watermark: number } {
  const plan = planBatch(
    times.map((at, i) => message(i, `e${i}`, at)),
    before,
    now + skewMs,
  );
  const result: string[] = [];
  for (const [, planned] of plan.byUser) for (const p of planned) result[Number(p.offset)] = applyEvent(newKeyState(p.event.userKey), p.event, engine, p.arrivalWatermark);
  return { outcomes: result, watermark: plan.watermark };
}

describe('replaying history into a partition', () => {
  it('after a live-dated event, every event older than the allowed lateness is late', () => {
    const history = [now - 3 * DAY, now - 3 * DAY + MINUTE, now - 2 * DAY, now - 61 * MINUTE, now - 59 * MINUTE];
    const { outcomes: result, watermark } = outcomes([now, ...history]);
    expect(result).toEqual(['applied', 'late', 'late', 'late', 'late', 'applied']);
    expect(watermark).toBe(now); // history never moves it back
  });

  it('the same, when the live event came in an earlier batch (the watermark is kept per partition)', () => {
    expect(outcomes([now - 2 * DAY, now - 30 * MINUTE], now).outcomes).toEqual(['late', 'applied']);
  });

  it('into a partition with no live event yet, in time order, nothing is late; a live event in the middle makes the rest late', () => {
    expect(outcomes([now - 3 * DAY, now - 2 * DAY, now - DAY]).outcomes).toEqual(['applied', 'applied', 'applied']);
    expect(outcomes([now - 3 * DAY, now, now - 2 * DAY]).outcomes).toEqual(['applied', 'applied', 'late']);
  });

  it('an event dated beyond wall clock + MAX_CLOCK_SKEW_MINUTES moves the watermark only to that bound', () => {
    const { outcomes: result, watermark } = outcomes([now + 2 * DAY, now - 50 * MINUTE, now - 2 * DAY]);
    expect(watermark).toBe(now + skewMs);
    // So recent events stay on time, while history is still judged from "now".
    expect(result).toEqual(['applied', 'applied', 'late']);
  });

  it('history older than the lateness is late even with a skewed future event first', () => {
    expect(outcomes([now + DAY, now - 66 * MINUTE]).outcomes).toEqual(['applied', 'late']);
  });
});
