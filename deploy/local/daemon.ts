/**
 * Background processes that outlive the command that started them: start one detached with its
 * output in a log file, remember it in a state file, find it again, stop it.
 *
 * A state file names the process by pid *and* by a marker that must appear in its command line
 * (a path inside this checkout's state directory), so a recycled pid is never taken for ours and
 * never signalled.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface DaemonState {
  pid: number;
  /** Appears in the process's command line; proves the pid is still ours. */
  marker: string;
  port: number;
  logFile: string;
  startedAt: string;
  /** Anything else the service wants to remember (e.g. the controller port). */
  extra?: Record<string, string | number>;
}

export function readState(file: string): DaemonState | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as DaemonState;
  } catch {
    return undefined;
  }
}

export function writeState(file: string, state: DaemonState): void {
  fs.writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`);
}

/** True when `pid` is alive and its command line contains `marker`. */
export function isOurs(pid: number, marker: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(marker);
  } catch {
    // No /proc (not Linux): trust the pid, the state file was written by us.
    return true;
  }
}

export interface SpawnOptions {
  command: string;
  args: string[];
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts a detached process (own process group, no stdin) writing to `logFile`. */
export function spawnDaemon(options: SpawnOptions): number {
  fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
  const out = fs.openSync(options.logFile, 'a');
  try {
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
    if (child.pid === undefined) throw new Error(`could not start ${options.command}`);
    child.unref();
    return child.pid;
  } finally {
    fs.closeSync(out);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopDaemon(pid: number, marker: string, graceMs = 30_000): Promise<void> {
  if (!isOurs(pid, marker)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isOurs(pid, marker)) return;
    await sleep(100);
  }
  if (isOurs(pid, marker)) process.kill(pid, 'SIGKILL');
  while (isOurs(pid, marker)) await sleep(50);
}

export interface WaitOptions {
  what: string;
  pid: number;
  marker: string;
  logFile: string;
  timeoutMs: number;
}

/**
 * Polls `probe` until it succeeds. Fails early, with the end of the log, when the process dies,
 * and after `timeoutMs` otherwise.
 */
export async function waitUntilReady(probe: () => Promise<boolean>, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await probe()) return;
    const alive = isOurs(options.pid, options.marker);
    if (!alive || Date.now() > deadline) {
      const reason = alive ? `not ready after ${options.timeoutMs / 1000}s` : 'exited';
      throw new Error(`${options.what} ${reason}; end of ${options.logFile}:\n${tail(options.logFile, 30)}`);
    }
    await sleep(250);
  }
}

/** For a failed start: stop what was spawned (it may be half up), then fail with the original error. */
export function stopAndRethrow(stop: () => Promise<unknown>): (error: unknown) => Promise<never> {
  return async (error: unknown) => {
    await stop().catch(() => undefined);
    throw error;
  };
}

export function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Progress chatter goes to stderr: stdout of `services:up` is for `eval`. */
export function say(message: string): void {
  process.stderr.write(`[services] ${message}\n`);
}
