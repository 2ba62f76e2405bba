/**
 * Running the real collector in integration tests: in process, on a free port, producing to a
 * test topic through a real kafkajs producer, with salts under a test Redis prefix, its log lines
 * kept in memory (the privacy tests search them).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Kafka } from 'kafkajs';
import { Collector } from '../../src/collect/collector';
import type { CollectConfig } from '../../src/config';
import type { SessionRecord } from '../../src/recompute/recompute';
import { createLogger } from '../../src/observability/logger';
import { collectConfig } from './collect-app';
import { getRedisUrl } from './services';

const REPO = join(__dirname, '..', '..');

export interface RunningCollector {
  collector: Collector;
  url: string;
  logs: () => string;
}

export async function startCollector(
  kafka: Kafka,
  redisPrefix: string,
  overrides: Partial<CollectConfig>,
  options: { now?: () => number; shutdownTimeoutMs?: number } = {},
): Promise<RunningCollector> {
  let logs = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs += chunk.toString();
      done();
    },
  });
  const collector = await Collector.start({
    config: collectConfig(overrides),
    kafka,
    redis: { url: getRedisUrl(), tls: false, keyPrefix: redisPrefix },
    sessionTimeoutMs: 30 * 60_000,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 20_000,
    log: createLogger('debug', sink),
    now: options.now,
  });
  return { collector, url: `http://127.0.0.1:${collector.port}`, logs: () => logs };
}

/**
 * What `sessionizer recompute --format segment` (the command itself, from the TypeScript
 * sources) makes of these Segment messages, written to a file as NDJSON: the offline path the
 * collected sessions must equal.
 */
export async function recomputeSegment(messages: ReadonlyArray<Record<string, unknown>>, timeoutMinutes = 30): Promise<SessionRecord[]> {
  const dir = mkdtempSync(join(tmpdir(), 'collect-recompute-'));
  try {
    const input = join(dir, 'messages.ndjson');
    writeFileSync(input, messages.map((m) => JSON.stringify(m) + '\n').join(''));
    const args = ['-r', 'ts-node/register/transpile-only', join(REPO, 'src', 'cli.ts'), 'recompute', '--format', 'segment', '--input', input, '--timeout-minutes', String(timeoutMinutes)];
    const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve) => {
      const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.once('exit', (exitCode) => resolve({ stdout: out, stderr: err, code: exitCode }));
    });
    // Every message must have been a valid one: the summary says "… 0 invalid lines skipped".
    if (code !== 0 || !/ 0 invalid lines/.test(stderr)) throw new Error(`recompute --format segment: exit ${code}: ${stderr}`);
    return stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as SessionRecord);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
