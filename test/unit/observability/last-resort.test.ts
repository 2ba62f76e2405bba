/**
 * The last-resort handler: a rejection nobody handles ends the process with exit 1 and one JSON
 * line carrying the fixed message the fault tests look for.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { LAST_RESORT_MESSAGE } from '../../../src/observability/last-resort';

const REPO = join(__dirname, '..', '..', '..');

function run(code: string): { status: number | null; stderr: string } {
  const script = `require(${JSON.stringify(join(REPO, 'src', 'observability', 'last-resort.ts'))}).installLastResortHandlers(); ${code}`;
  const result = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stderr: result.stderr };
}

it('exits 1 with one JSON line on an unhandled rejection', () => {
  const { status, stderr } = run("Promise.reject(new Error('nobody listened')); setTimeout(() => undefined, 5000);");
  expect(status).toBe(1);
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  const line = JSON.parse(lines[0] as string) as { msg: string; kind: string; err: { message: string } };
  expect(line).toMatchObject({ msg: LAST_RESORT_MESSAGE, kind: 'unhandledRejection', err: { message: 'nobody listened' } });
});

it('exits 1 with one JSON line on an uncaught exception', () => {
  const { status, stderr } = run("setTimeout(() => { throw new TypeError('boom'); }, 10);");
  expect(status).toBe(1);
  expect(JSON.parse(stderr.trim()) as { kind: string }).toMatchObject({ kind: 'uncaughtException', msg: LAST_RESORT_MESSAGE });
});

it('leaves a process without such failures alone', () => {
  expect(run('Promise.reject(new Error("handled")).catch(() => undefined);').status).toBe(0);
});
