/**
 * The container image's HEALTHCHECK (`node dist/healthcheck.js`). Docker runs it in every
 * container of the image, whatever the command: for the long-running ones — the worker, the
 * collector and the dashboard, which serve /healthz on HTTP_PORT (the dashboard on 9466 when
 * HTTP_PORT is not set) — it asks GET /healthz; for a one-shot
 * command (`migrate`, `report`, `recompute`, `forget`...) there is no HTTP endpoint, and such a
 * container is not unhealthy, so the check passes. The command is read from /proc (the
 * `cli.js worker|collect|dashboard` process, whether it runs as PID 1 or under `docker run --init`).
 *
 * Exit codes, as Docker wants them: 0 healthy, 1 unhealthy.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadHttpPort, type ServerCommand } from './config';

/** Commands that run until stopped and serve /healthz on HTTP_PORT. */
const SERVER_COMMANDS = new Set(['worker', 'collect', 'dashboard']);

/** The server command of `… cli.js worker|collect|dashboard`, else undefined (`cli.js` alone runs none: commander asks for a command). */
export function serverCommandOf(args: readonly string[]): ServerCommand | undefined {
  const cli = args.findIndex((arg) => /(^|\/)cli\.(js|ts)$/.test(arg));
  const command = cli >= 0 ? (args[cli + 1] ?? '') : '';
  // `dashboard hash-secret` is a one-shot subcommand, not the server.
  const next = args[cli + 2] ?? '';
  if (command === 'dashboard' && next !== '' && !next.startsWith('-')) return undefined;
  return SERVER_COMMANDS.has(command) ? (command as ServerCommand) : undefined;
}

export function isServerCommandLine(args: readonly string[]): boolean {
  return serverCommandOf(args) !== undefined;
}

/** The server command a process under `procRoot` runs (worker, collect or dashboard), if any. */
export function runningServer(procRoot = '/proc'): ServerCommand | undefined {
  let entries: string[];
  try {
    entries = readdirSync(procRoot).filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  for (const pid of entries) {
    try {
      const command = serverCommandOf(readFileSync(join(procRoot, pid, 'cmdline'), 'utf8').split('\0'));
      if (command) return command;
    } catch {
      // the process ended meanwhile, or is not ours to read
    }
  }
  return undefined;
}

export function serverRunning(procRoot = '/proc'): boolean {
  return runningServer(procRoot) !== undefined;
}

/** The port of /healthz: HTTP_PORT; without it, the command's own default (9464, 9465 or 9466). */
export function healthPortOf(command: ServerCommand | undefined, env: NodeJS.ProcessEnv = process.env): number {
  return loadHttpPort(env, command ?? 'worker');
}

export async function healthcheck(options: { procRoot?: string; port?: number; timeoutMs?: number } = {}): Promise<number> {
  const command = runningServer(options.procRoot);
  if (command === undefined) return 0;
  const port = options.port ?? healthPortOf(command);
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
