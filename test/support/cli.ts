/**
 * Running `sessionizer` as a user does, as a child process: from the TypeScript sources through
 * ts-node (no build needed), or from a private build (`buildCli`) when a test measures the
 * process itself (memory, timing) and ts-node's compiler would distort it. The build goes to
 * .cache/ (ignored by git), not dist/, which other runs may be rewriting.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const REPO = join(__dirname, '..', '..');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  /** Node options before the script, e.g. `--max-old-space-size=64`. */
  nodeArgs?: string[];
  /** A built cli.js (from `buildCli`) instead of the sources. */
  cli?: string;
  timeoutMs?: number;
  cwd?: string;
}

/** Runs the CLI to its end; never rejects on a non-zero exit. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const script = options.cli ? [options.cli] : ['-r', 'ts-node/register/transpile-only', join(REPO, 'src', 'cli.ts')];
  const started = Date.now();
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...script, ...args], {
    cwd: options.cwd ?? REPO,
    env: { ...process.env, LOG_LEVEL: 'info', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  return new Promise((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    }),
  );
}

/** Compiles src/ into a fresh folder under .cache/ and returns its cli.js; `removeBuild` it after. */
export function buildCli(): string {
  mkdirSync(join(REPO, '.cache'), { recursive: true });
  const dir = mkdtempSync(join(REPO, '.cache', 'cli-build-'));
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', dir, '--declaration', 'false', '--sourceMap', 'false'], {
    cwd: REPO,
    stdio: 'pipe',
  });
  cpSync(join(REPO, 'src', 'state', 'scripts'), join(dir, 'state', 'scripts'), { recursive: true });
  return join(dir, 'cli.js');
}

export function removeBuild(cli: string): void {
  if (cli) rmSync(join(cli, '..'), { recursive: true, force: true });
}

/** A loopback port nothing listens on (bound, read, released). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
