/**
 * Running helper commands (Maven, the Kafka storage tool, apt-get) to completion.
 *
 * Always asynchronous: services start in parallel, and a synchronous child would freeze this
 * process's event loop, stalling the other services' readiness probes into false time-outs.
 * Output goes to stderr, like all progress: stdout of `services:up` is for `eval`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { tail } from './daemon';
import { repoRoot } from './paths';

export interface RunOptions {
  what: string;
  env?: NodeJS.ProcessEnv;
  /** Append the output to this file instead of stderr (for chatty tools). */
  logFile?: string;
}

export function runCommand(command: string, args: string[], options: RunOptions): Promise<void> {
  const out = options.logFile ? fs.openSync(options.logFile, 'a') : 2;
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', out, out], cwd: repoRoot, env: options.env ?? process.env });
    const fail = (reason: string): void => {
      const log = options.logFile ? `\nend of ${options.logFile}:\n${tail(options.logFile, 30)}` : '';
      reject(new Error(`${options.what} failed (${reason}): ${command} ${args.join(' ')}${log}`));
    };
    child.once('error', (error) => fail(error.message));
    child.once('exit', (code, signal) => (code === 0 ? resolve() : fail(signal ?? `exit ${code}`)));
  }).finally(() => {
    if (out !== 2) fs.closeSync(out);
  });
}

/** True when the command runs and exits 0 (used to check a tool is installed). */
export function commandSucceeds(command: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}
