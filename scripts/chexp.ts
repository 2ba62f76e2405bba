// Temporary experiment (not committed): ClickHouse CPU per million events for a table shape.
import { createClient } from '@clickhouse/client';
import { readFileSync } from 'node:fs';
import { migrate } from '../src/clickhouse/migrations';
import { ClickHouseSink } from '../src/clickhouse/session-sink';
import { EVENT_COLUMNS } from '../src/clickhouse/event-row';
import { RowBinaryBatch, RowBinaryEncoder } from '../src/clickhouse/row-binary';
import { eventRowOf } from '../src/clickhouse/event-row';
import { parseEventFields } from '../src/events/parse-event';
import { generateTraffic } from '../src/loadgen/traffic';
import { listenerPid, processCpuSeconds } from '../bench/stats';

async function main() {
  const mode = process.argv[2] ?? 'current';
  const N = Number(process.argv[3] ?? 500000);
  const BATCH = Number(process.argv[4] ?? 12000);
  const client = createClient({ url: process.env.CLICKHOUSE_URL, request_timeout: 600000 });
  const db = `chexp_${mode}_${Date.now().toString(36)}`;
  await migrate(client, { database: db, cluster: '' });
  if (mode !== 'current') {
    for (const stmt of readFileSync(`/tmp/chexp/${mode}.sql`, 'utf8').split(';').map((s) => s.trim()).filter(Boolean)) await client.command({ query: stmt.replaceAll('{database}', db) });
  }
  const sink = new ClickHouseSink(client, db);
  const pid = listenerPid(process.env.CLICKHOUSE_URL as string);
  // prepare batches
  const ALIASED = new Set(['name','page_url','page_path','page_title','page_referrer','campaign_source','campaign_medium','campaign_name','campaign_term','campaign_content','device_type','device_os','device_browser','device_app_version','geo_country','geo_region','geo_city','properties']);
  const enc = mode === 'current' ? new RowBinaryEncoder('events', EVENT_COLUMNS) : new RowBinaryEncoder('events', EVENT_COLUMNS.filter((c) => !ALIASED.has(c.name)));
  const mk = () => new RowBinaryBatch(enc as any, BATCH * 450) as any;
  const batches: any[] = [];
  let batch = mk();
  let n = 0;
  for (const e of generateTraffic({ users: Math.round(N / 18), startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 3 * 86400000, duplicateRate: 0.01, disorderMs: 60000, seed: 3 })) {
    const raw = JSON.stringify(e);
    const p = parseEventFields(raw);
    if (!p.ok) continue;
    batch.add(eventRowOf(p.fields, p.ts, raw, { topic: 't', partition: n % 4, offset: n, receivedAtMs: Date.now() }));
    if (batch.count >= BATCH) { batches.push(batch); batch = mk(); }
    if (++n >= N) break;
  }
  if (batch.count) batches.push(batch);
  const before = processCpuSeconds(pid!)!;
  const t0 = Date.now();
  let i = 0;
  for (const b of batches) await sink.insertEventBatch(b, `tok-${i++}`);
  const insertCpu = processCpuSeconds(pid!)! - before;
  const ins = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 15000));
  const total = processCpuSeconds(pid!)! - before;
  const parts = await (await client.query({ query: `SELECT count() c, sum(rows) r, sum(data_compressed_bytes) b FROM system.parts WHERE database='${db}' AND table='events' AND active`, format: 'JSONEachRow' })).json();
  console.log(JSON.stringify({ mode, N, BATCH, insertSeconds: ins, insertCpuPerM: (insertCpu / N) * 1e6, totalCpuPerM_after15s: (total / N) * 1e6, parts }));
  await client.command({ query: `DROP DATABASE ${db}` });
  await client.close();
}
void main();
