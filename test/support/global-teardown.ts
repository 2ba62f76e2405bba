/**
 * Jest global teardown of the `integration` project: stops the containers or local servers that
 * global setup started. Services found running (from the environment, or started earlier by
 * `npm run services:up`) are left running.
 */
import { RESOLVED_KEY } from './global-setup';
import type { ResolvedServices } from './resolve-services';

export default async function globalTeardown(): Promise<void> {
  const resolved = (globalThis as Record<symbol, ResolvedServices | undefined>)[RESOLVED_KEY];
  if (!resolved) return;
  delete (globalThis as Record<symbol, ResolvedServices | undefined>)[RESOLVED_KEY];
  await resolved.release();
}
