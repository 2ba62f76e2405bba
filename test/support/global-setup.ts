/**
 * Jest global setup of the `integration` project: resolves the services once per run (see
 * resolve-services.ts) and exports their addresses through process.env, which the test workers
 * inherit. What it started is remembered for global-teardown.ts.
 */
import { resolveServices, type ResolvedServices } from './resolve-services';

/** Shared with global-teardown.ts: both run in Jest's main process. */
export const RESOLVED_KEY = Symbol.for('sessionizer.test.services');

export default async function globalSetup(): Promise<void> {
  const log = (line: string): void => void process.stderr.write(`[test services] ${line}\n`);
  process.stderr.write('\n');
  const resolved = await resolveServices(log);
  for (const [name, value] of Object.entries(resolved.env)) process.env[name] = value;
  (globalThis as Record<symbol, ResolvedServices>)[RESOLVED_KEY] = resolved;
}
