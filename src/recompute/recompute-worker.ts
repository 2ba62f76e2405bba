/**
 * A worker thread of `recompute` (see recompute.ts, `ThreadPool`). It answers requests in
 * order, each with the same `id`:
 *   parse      a batch of whole input lines (bytes) -> events appended to this worker's bucket
 *              files; replies with the line and event counts and the invalid lines
 *   endParse   flushes and closes the bucket files; replies with the events per bucket
 *   bucket     sessionizes one bucket (all writers' files) into its output file
 * Failures are replied as `{ type: 'error' }`.
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { BucketWriter, lineParser, parseBatch, sessionizeBucket, type BucketJob, type InputFormat } from './pipeline';

export interface WorkerInit {
  dir: string;
  buckets: number;
  writer: number;
  bufferBytes: number;
  input?: InputFormat;
}

export type WorkerRequest =
  | { id: number; type: 'parse'; bytes: Uint8Array }
  | { id: number; type: 'endParse' }
  | { id: number; type: 'bucket'; job: BucketJob };

const init = workerData as WorkerInit;
const writer = new BucketWriter(init.dir, init.buckets, init.writer, init.bufferBytes);
const parse = lineParser(init.input);
// A line of our own format lets the codec skip a check (see BucketWriter.add); a Segment line
// does not (the mapping decodes URL parameters, which can hold any character).
const ownFormat = init.input?.format !== 'segment';
let peakHeapBytes = 0;
const sampleHeap = () => {
  peakHeapBytes = Math.max(peakHeapBytes, getHeapStatistics().used_heap_size);
};

function handle(request: WorkerRequest): Record<string, unknown> {
  switch (request.type) {
    case 'parse': {
      const bytes = Buffer.from(request.bytes.buffer, request.bytes.byteOffset, request.bytes.byteLength);
      const result = parseBatch(bytes, (event, line) => writer.add(event, ownFormat ? line : undefined), parse);
      sampleHeap();
      return { ...result };
    }
    case 'endParse': {
      const files = writer.close();
      return { counts: writer.counts, files };
    }
    case 'bucket':
      return { ...sessionizeBucket(request.job, sampleHeap) };
  }
}

parentPort?.on('message', (request: WorkerRequest | { type: 'close' }) => {
  // Let the thread end by itself (which also lets --cpu-prof write this thread's profile).
  if (request.type === 'close') return parentPort?.close();
  let reply: Record<string, unknown>;
  try {
    reply = { id: request.id, type: 'ok', ...handle(request) };
  } catch (err) {
    const error = err as Error;
    reply = { id: request.id, type: 'error', message: error.message, stack: error.stack };
  }
  reply.peakHeapBytes = peakHeapBytes;
  parentPort?.postMessage(reply);
});
