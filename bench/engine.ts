/**
 * `npm run bench:engine`: recompute over a generated 1,000,000-event file, against a baseline
 * of plain Node reading the same file and JSON.parse-ing every line, measured in the same run.
 * Prints events/s, peak heap, and the time ratio. Targets: ratio ≤ 2.0, peak heap < 300 MB.
 *
 * Peak heap of recompute is the main thread's sampled peak plus the sum of its worker threads'
 * peaks (each isolate has its own heap): an upper bound of the heap in use at any one time.
 * CPU time (all threads) and the load average are printed too: on a shared machine, wall times
 * move with the load; the ratio, measured alternately in the same run, moves less.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineWriter } from '../src/io/line-writer';
import { generateTraffic } from '../src/loadgen/traffic';
import { median } from './stats';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const MAX_RATIO = 2.0;

interface Measurement {
  ms: number;
  cpuMs: number;
  peakHeapBytes: number;
  workerPeakHeapBytes: number;
  workers: number;
  maxRssBytes: number;
}

async function ensureInput(): Promise<string> {
  const file = join(tmpdir(), `sessionizer-bench-rich-${EVENTS}.ndjson`);
  if (existsSync(file)) return file;
  const writer = new LineWriter(createWriteStream(file));
  let n = 0;
  const users = Math.max(1, Math.round(EVENTS / 17));
  for (const event of generateTraffic({ users, startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 7 * 86_400_000, duplicateRate: 0.01, disorderMs: 60_000, seed: 7 })) {
    await writer.write(JSON.stringify(event));
    if (++n >= EVENTS) break;
  }
  await writer.close();
  return file;
}

function measure(mode: 'baseline' | 'recompute', file: string): Measurement {
  const out = execFileSync(process.execPath, [join(__dirname, 'measure.js'), mode, file], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as Measurement;
}

async function main(): Promise<void> {
  const file = await ensureInput();
  const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
  console.log(`input: ${file} (${mb(statSync(file).size)} MB, ${EVENTS} events); ${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
  const baseline: Measurement[] = [];
  const recompute: Measurement[] = [];
  for (let i = 0; i < RUNS; i++) {
    baseline.push(measure('baseline', file));
    recompute.push(measure('recompute', file));
  }
  const baseMs = median(baseline.map((m) => m.ms));
  const recMs = median(recompute.map((m) => m.ms));
  const heapOf = (m: Measurement) => m.peakHeapBytes + m.workerPeakHeapBytes;
  const peakHeap = Math.max(...recompute.map(heapOf));
  const ratio = recMs / baseMs;
  const s = (ms: number) => (ms / 1000).toFixed(2);
  console.log(`runs: ${RUNS} (medians); load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`baseline read+JSON.parse: ${s(baseMs)} s (${Math.round(EVENTS / (baseMs / 1000))} lines/s), cpu ${s(median(baseline.map((m) => m.cpuMs)))} s, peak heap ${mb(Math.max(...baseline.map((m) => m.peakHeapBytes)))} MB`);
  console.log(`recompute:                ${s(recMs)} s (${Math.round(EVENTS / (recMs / 1000))} events/s), cpu ${s(median(recompute.map((m) => m.cpuMs)))} s, ${recompute[0]?.workers ?? 0} worker threads`);
  console.log(`  peak heap ${mb(peakHeap)} MB (main ${mb(Math.max(...recompute.map((m) => m.peakHeapBytes)))} MB + workers ${mb(Math.max(...recompute.map((m) => m.workerPeakHeapBytes)))} MB), max RSS ${mb(Math.max(...recompute.map((m) => m.maxRssBytes)))} MB`);
  console.log(`  each run: ${recompute.map((m, i) => `${s(m.ms)} s / baseline ${s((baseline[i] as Measurement).ms)} s`).join('; ')}`);
  console.log(`ratio recompute/baseline: ${ratio.toFixed(2)} (target ≤ ${MAX_RATIO.toFixed(2)}) ${ratio <= MAX_RATIO ? 'PASS' : 'FAIL'}`);
  console.log(`peak heap:                ${mb(peakHeap)} MB (target < 300 MB) ${peakHeap < 300 * 1024 * 1024 ? 'PASS' : 'FAIL'}`);
  if (ratio > MAX_RATIO || peakHeap >= 300 * 1024 * 1024) process.exitCode = 1;
}

void main();
