/**
 * `npm run bench:startup`: how long `sessionizer` takes before it does anything, against plain
 * `node -e 0` measured in the same run (the machine is shared, so only ratios taken side by side
 * mean something). Runs the built CLI (`dist/cli.js`, as `npx sessionizer` does after its own
 * lookup) for `--version`, `--help`, a subcommand's `--help`, and a usage error of a command
 * whose module is heavy (it must fail before loading it); then `npx sessionizer --version`, whose
 * extra time is npm's. Each case runs BENCH_RUNS times (default 7), interleaved with the baseline;
 * medians are reported. Target: `--help` and `--version` under 0.5 s.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';

const REPO = join(__dirname, '..');
const CLI = join(REPO, 'dist', 'cli.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const TARGET_MS = 500;

interface Case {
  name: string;
  command: string;
  args: string[];
  /** Held to the 0.5 s target. */
  target?: boolean;
}

const CASES: Case[] = [
  { name: 'node -e 0 (baseline)', command: process.execPath, args: ['-e', '0'] },
  { name: 'sessionizer --version', command: process.execPath, args: [CLI, '--version'], target: true },
  { name: 'sessionizer --help', command: process.execPath, args: [CLI, '--help'], target: true },
  { name: 'sessionizer report --help', command: process.execPath, args: [CLI, 'report', '--help'], target: true },
  { name: 'sessionizer worker --bogus (usage error)', command: process.execPath, args: [CLI, 'worker', '--bogus'] },
  { name: 'npx sessionizer --version', command: 'npx', args: ['--no-install', 'sessionizer', '--version'] },
];

function timeOnce(c: Case): number {
  const started = process.hrtime.bigint();
  const run = spawnSync(c.command, c.args, { cwd: REPO, stdio: 'ignore' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (run.error) throw run.error;
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function main(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const samples = new Map<string, number[]>(CASES.map((c) => [c.name, []]));
  // Warm the file cache once, then interleave the cases so load changes hit them all alike.
  for (const c of CASES) timeOnce(c);
  for (let run = 0; run < RUNS; run += 1) for (const c of CASES) samples.get(c.name)?.push(timeOnce(c));
  const baseline = median(samples.get(CASES[0]?.name ?? '') ?? []);
  const [load1] = loadavg();
  process.stdout.write(`startup, median of ${RUNS} runs (load average ${load1?.toFixed(2)}, ${cpus().length} cores, node ${process.version})\n`);
  let missed = 0;
  for (const c of CASES) {
    const ms = median(samples.get(c.name) ?? []);
    const verdict = c.target ? (ms < TARGET_MS ? ' ok (< 0.5 s)' : ' OVER 0.5 s') : '';
    if (c.target && ms >= TARGET_MS) missed += 1;
    process.stdout.write(`  ${c.name.padEnd(42)} ${ms.toFixed(0).padStart(6)} ms  ${(ms / baseline).toFixed(2).padStart(6)}× node -e 0${verdict}\n`);
  }
  process.exitCode = missed > 0 ? 1 : 0;
}

main();
