/**
 * `npm run bench:hot-path`: the worker's per-event CPU without any I/O, to compare code changes
 * quickly on a shared machine (CPU time, not wall time). Runs what a partition batch does between
 * its fetch and its writes — planBatch (UTF-8 check, parse, validate, the events rows in
 * RowBinary), state decode, the engine, state encode, and the session rows in RowBinary (the
 * outbox payload) — over BENCH_EVENTS (default 300,000) generated rich events in batches of
 * 4,500 messages (a fetch of 2 MB per partition), with states kept in a Map as Redis would keep
 * them. Prints µs of CPU per event (median of BENCH_RUNS, default 3). Kafka decoding, Redis and
 * ClickHouse I/O are not in it: `bench:worker` measures the whole.
 */
import { ClickHouseSink, encodeSessionRows, sessionValues, signedRows } from '../src/clickhouse/session-sink';
import { eventRowOf } from '../src/clickhouse/event-row';
import { applyEvent, isIdle, newKeyState, nextDeadlines, reconcile, type SessionChange } from '../src/engine/engine';
import { generateTraffic } from '../src/loadgen/traffic';
import { decodeState, encodeState } from '../src/state/codec';
import { planBatch, type IncomingMessage } from '../src/worker/batch-plan';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 300_000);
const BATCH = 4_500;
const ENGINE = { timeoutMs: 30 * 60_000, latenessMs: 60 * 60_000 };

function messages(): IncomingMessage[][] {
  const batches: IncomingMessage[][] = [];
  let batch: IncomingMessage[] = [];
  let offset = 0;
  for (const event of generateTraffic({ users: Math.round(EVENTS / 18), startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 3 * 86_400_000, duplicateRate: 0.01, disorderMs: 60_000, seed: 3 })) {
    batch.push({ offset: String(offset++), key: Buffer.from(String(event.anonymous_id || event.user_id)), value: Buffer.from(JSON.stringify(event)) });
    if (batch.length === BATCH) {
      batches.push(batch);
      batch = [];
    }
    if (offset >= EVENTS) break;
  }
  if (batch.length) batches.push(batch);
  return batches;
}

function run(batches: IncomingMessage[][]): void {
  const sink = new ClickHouseSink(null as never, 'bench');
  const redis = new Map<string, Buffer>();
  let watermark = -Infinity;
  let outboxBytes = 0;
  for (const fresh of batches) {
    let messageBytes = 0;
    for (const m of fresh) messageBytes += m.value?.length ?? 0;
    const eventRows = sink.eventBatch(true, messageBytes);
    const started = Date.now();
    const plan = planBatch(fresh, watermark, Infinity, (fields, ts, raw, offset) =>
      eventRows.add(eventRowOf(fields, ts, raw, { topic: 'bench', partition: 0, offset, receivedAtMs: started })),
    );
    eventRows.bytes();
    watermark = plan.watermark;
    const changes: SessionChange[] = [];
    const updates: Buffer[] = [];
    for (const [userKey, planned] of plan.byUser) {
      const stored = redis.get(userKey);
      const state = stored ? decodeState(userKey, stored) : newKeyState(userKey);
      for (const p of planned) applyEvent(state, p.event, ENGINE, p.arrivalWatermark);
      changes.push(...reconcile(state, ENGINE, watermark));
      nextDeadlines(state, ENGINE);
      const encoded = encodeState(state);
      updates.push(encoded);
      if (!isIdle(state)) redis.set(userKey, encoded);
      else redis.delete(userKey); // (the worker keeps a small idle record instead)
    }
    const rows = signedRows(changes).map(sessionValues);
    // The outbox payload is the session rows' insert body.
    outboxBytes += rows.length > 0 ? encodeSessionRows(rows).length : 0;
  }
  if (outboxBytes < 0) console.log(outboxBytes);
}

function main(): void {
  const batches = messages();
  run(batches.slice(0, 4)); // warm-up
  const results: number[] = [];
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  for (let i = 0; i < runs; i++) {
    const before = process.cpuUsage();
    run(batches);
    const cpu = process.cpuUsage(before);
    const us = (cpu.user + cpu.system) / EVENTS;
    results.push(us);
    console.log(`run ${i + 1}: ${us.toFixed(2)} µs CPU per event`);
  }
  results.sort((a, b) => a - b);
  console.log(`median: ${(results[Math.floor(results.length / 2)] as number).toFixed(2)} µs CPU per event (${EVENTS} events in batches of ${BATCH})`);
}

main();
