// Runs one measured job in this process and prints {ms, cpuMs, peakHeapBytes, workerPeakHeapBytes,
// maxRssBytes} as JSON. Usage: node bench/measure.js baseline FILE | recompute FILE
// Kept in plain JS and run as a child process, so each measurement has a fresh heap.
// peakHeapBytes samples this (main) thread's heap every 20 ms; recompute's worker threads have
// heaps of their own, reported by each worker as its peak (workerPeakHeapBytes, their sum).
/* global require, process, setInterval, clearInterval */
/* eslint-disable @typescript-eslint/no-require-imports */
'use strict';
const { createReadStream, createWriteStream } = require('node:fs');
const readline = require('node:readline');

let peakHeap = 0;
const sample = () => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed));
const timer = setInterval(sample, 20);
let workerPeaks = [];

async function baseline(file) {
  // What a user would write first: read the lines and JSON.parse each one.
  const lines = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    if (JSON.parse(line)) n += 1;
  }
  return n;
}

async function recomputeFile(file) {
  const { recompute } = require('../dist/recompute/recompute');
  const stats = await recompute(createReadStream(file, { highWaterMark: 1 << 20 }), createWriteStream('/dev/null'), {
    timeoutMs: 30 * 60_000,
    onWorkerHeap: (peaks) => (workerPeaks = peaks),
  });
  return stats;
}

(async () => {
  const [mode, file] = process.argv.slice(2);
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const result = mode === 'baseline' ? await baseline(file) : await recomputeFile(file);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const used = process.cpuUsage(cpu);
  sample();
  clearInterval(timer);
  process.stdout.write(
    JSON.stringify({
      ms,
      cpuMs: (used.user + used.system) / 1000,
      peakHeapBytes: peakHeap,
      workerPeakHeapBytes: workerPeaks.reduce((a, b) => a + b, 0),
      workers: workerPeaks.length,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      result,
    }) + '\n',
  );
})();
