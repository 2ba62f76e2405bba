/**
 * The container image's HEALTHCHECK (`node dist/healthcheck.js`). Docker runs it in every
 * container of the image, whatever the command: for the worker it asks GET /healthz on
 * HTTP_PORT; for a one-shot command (`migrate`, `report`, `recompute`, `forget`...) there is no
 * HTTP endpoint, and such a container is not unhealthy, so the check passes. The command is read
 * from /proc (the `cli.js worker` process, whether it runs as PID 1 or under `docker run --init`).
 *
 * Exit codes, as Docker wants them: 0 healthy, 1 unhealthy.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadHttpPort } from './config';

/** Whether a process's arguments are `… cli.js worker` (`cli.js` alone runs no worker: commander asks for a command). */
export function isWorkerCommandLine(args: readonly string[]): boolean {
  const cli = args.findIndex((arg) => /(^|\/)cli\.(js|ts)$/.test(arg));
  return cli >= 0 && args[cli + 1] === 'worker';
}

/** Whether a process under `procRoot` runs the worker. */
export function workerRunning(procRoot = '/proc'): boolean {
  let entries: string[];
  try {
    entries = readdirSync(procRoot).filter((name) => /^\d+$/.test(name));
  } catch {
    return false;
  }
  return entries.some((pid) => {
    try {
      return isWorkerCommandLine(readFileSync(join(procRoot, pid, 'cmdline'), 'utf8').split('\0'));
    } catch {
      return false; // the process ended meanwhile, or is not ours to read
    }
  });
}

export async function healthcheck(options: { procRoot?: string; port?: number; timeoutMs?: number } = {}): Promise<number> {
  if (!workerRunning(options.procRoot)) return 0;
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
