/**
 * Temporary folders of a recalculation (spilled runs, buckets): made here, removed by the code
 * that made them on success and on error, and also when the process is interrupted (SIGINT,
 * SIGTERM), which would otherwise leave hundreds of megabytes behind in the temp folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

const live = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

function onSignal(signal: NodeJS.Signals): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
  uninstall();
  // Our listener replaced Node's default (exit); with it gone, the signal does what it did.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function uninstall(): void {
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

/** A new folder `<parent>/<prefix>` plus six random characters, removed if the process is interrupted. */
export function makeTempDir(prefix: string, parent?: string): string {
  const dir = mkdtempSync(join(parent ?? tmpdir(), prefix));
  // Signals reach the main thread only; a worker's folders live inside one the main thread made.
  if (!isMainThread) return dir;
  if (live.size === 0) install();
  live.add(dir);
  return dir;
}

/** Removes a folder made by `makeTempDir` (idempotent). */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  if (live.delete(dir) && live.size === 0) uninstall();
}
