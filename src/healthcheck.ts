/**
 * The container image's HEALTHCHECK (`node dist/healthcheck.js`). Docker runs it in every
 * container of the image, whatever the command: for the long-running ones — the worker and the
 * collector, which both serve /healthz on HTTP_PORT — it asks GET /healthz; for a one-shot
 * command (`migrate`, `report`, `recompute`, `forget`...) there is no HTTP endpoint, and such a
 * container is not unhealthy, so the check passes. The command is read from /proc (the
 * `cli.js worker|collect` process, whether it runs as PID 1 or under `docker run --init`).
 *
 * Exit codes, as Docker wants them: 0 healthy, 1 unhealthy.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadHttpPort } from './config';

/** Commands that run until stopped and serve /healthz on HTTP_PORT. */
const SERVER_COMMANDS = new Set(['worker', 'collect']);

/** Whether a process's arguments are `… cli.js worker` or `… cli.js collect` (`cli.js` alone runs neither: commander asks for a command). */
export function isServerCommandLine(args: readonly string[]): boolean {
  const cli = args.findIndex((arg) => /(^|\/)cli\.(js|ts)$/.test(arg));
  return cli >= 0 && SERVER_COMMANDS.has(args[cli + 1] ?? '');
}

/** Whether a process under `procRoot` runs the worker or the collector. */
export function serverRunning(procRoot = '/proc'): boolean {
  let entries: string[];
  try {
    entries = readdirSync(procRoot).filter((name) => /^\d+$/.test(name));
  } catch {
    return false;
  }
  return entries.some((pid) => {
    try {
      return isServerCommandLine(readFileSync(join(procRoot, pid, 'cmdline'), 'utf8').split('\0'));
    } catch {
      return false; // the process ended meanwhile, or is not ours to read
    }
  });
}

export async function healthcheck(options: { procRoot?: string; port?: number; timeoutMs?: number } = {}): Promise<number> {
  if (!serverRunning(options.procRoot)) return 0;
  const port = options.port ?? loadHttpPort();
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(options.timeoutMs ?? 4_000) });
    return res.ok ? 0 : 1;
  } catch {
    return 1;
  }
}

if (require.main === module) {
  healthcheck().then(
    (code) => process.exit(code),
    () => process.exit(1),
  );
}
