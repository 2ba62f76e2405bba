/**
 * Inputs as a user gives them to `recompute` and `produce`, through a real process built from
 * src/: compressed, UTF-16 and binary files are refused (exit 2) without echoing their bytes; a 100 MB
 * line is skipped without being held in memory (the process runs with a 96 MB heap);
 * offline recompute takes T from SESSION_TIMEOUT_MINUTES unless --timeout-minutes says
 * otherwise. No services: produce never connects when it has nothing to send.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli, closedPort, removeBuild, runCli } from '../../support/cli';

let cli = '';
let work = '';
beforeAll(() => {
  cli = buildCli();
  work = mkdtempSync(join(tmpdir(), 'input-cli-'));
}, 180_000);
afterAll(() => {
  removeBuild(cli);
  rmSync(work, { recursive: true, force: true });
});

const event = (id: string, minute: number) =>
  JSON.stringify({ event_id: id, type: 'page_view', timestamp: Date.UTC(2024, 4, 1, 10, minute), anonymous_id: 'a-1' });

describe('refused inputs', () => {
  it.each([
    ['gzip', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x1b, 0x5b, 0x32, 0x4a]), /gzip-compressed/],
    ['binary', Buffer.concat([Buffer.from(event('e1', 0) + '\n'), Buffer.from([0, 1, 2, 0x1b, 0x5b, 0x32, 0x4a])]), /binary data \(a NUL byte at offset \d+\)/],
    ['UTF-16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(event('e1', 0) + '\n', 'utf16le')]), /UTF-16 text/],
    // A text file with a line that is not UTF-8 (Latin-1, say) is not refused whole: that line is
    // an invalid line, listed by number (test/unit/cli/recompute-cli.test.ts, "input that is not UTF-8").
  ])('a %s file: exit 2, one line naming the problem, no raw bytes', async (name, bytes, reason) => {
    const input = join(work, `${name}.ndjson`);
    writeFileSync(input, bytes);
    for (const args of [['recompute', '--input', input], ['produce', '--input', input]]) {
      const run = await runCli(args, { cli, env: { KAFKA_BROKERS: `127.0.0.1:${await closedPort()}` } });
      expect(run.code).toBe(2);
      expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^sessionizer: cannot read .*${name}\\.ndjson: `))]);
      expect(run.stderr).toMatch(reason);
      expect(run.stderr).not.toMatch(/[\x00-\x08\x0e-\x1f\x7f]|\ufffd/); // eslint-disable-line no-control-regex
      expect(run.stdout).toBe('');
    }
  }, 60_000);
});

describe('a 100 MB line', () => {
  it('is skipped by recompute and produce with a 96 MB heap, the lines around it kept', async () => {
    const input = join(work, 'huge-line.ndjson');
    const fd = openSync(input, 'w');
    writeSync(fd, `${event('e1', 0)}\n{"event_id":"huge","type":"page_view","pad":"`);
    const block = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i < 100; i++) writeSync(fd, block);
    writeSync(fd, `"}\n${event('e2', 5)}\n`);
    closeSync(fd);

    const recompute = await runCli(['recompute', '--input', input], { cli, nodeArgs: ['--max-old-space-size=96'], timeoutMs: 120_000 });
    expect(recompute.stderr).toMatch(/line 2: .*65537 bytes; the limit is 65536/);
    expect(recompute.stderr).toMatch(/3 lines, 2 valid events .* 1 invalid lines skipped; 1 sessions/);
    expect(recompute.code).toBe(0);
    expect(recompute.stdout.trim().split('\n')).toHaveLength(1);

    // produce, on a file holding only the huge line: nothing to send, so no broker is needed;
    // nothing valid at all is an unusable input (exit 2).
    const onlyHuge = join(work, 'only-huge.ndjson');
    const fd2 = openSync(onlyHuge, 'w');
    writeSync(fd2, '{"pad":"');
    for (let i = 0; i < 100; i++) writeSync(fd2, block);
    writeSync(fd2, '"}\n');
    closeSync(fd2);
    const produce = await runCli(['produce', '--input', onlyHuge], {
      cli,
      nodeArgs: ['--max-old-space-size=96'],
      env: { KAFKA_BROKERS: `127.0.0.1:${await closedPort()}` },
      timeoutMs: 120_000,
    });
    expect(produce.stderr).toContain('line 1: skipped, longer than the 64 KiB message limit');
    expect(produce.stderr).toMatch(/only-huge\.ndjson: none of its 1 lines is a valid event/);
    expect(produce.code).toBe(2);
  }, 240_000);
});

describe('recompute and SESSION_TIMEOUT_MINUTES', () => {
  const lines = [event('e1', 0), event('e2', 10), event('e3', 20)];

  it('takes T from the environment, lets --timeout-minutes override it, and refuses a bad value (exit 2)', async () => {
    const input = join(work, 'gaps.ndjson');
    writeFileSync(input, lines.join('\n') + '\n');
    const sessions = (run: { stdout: string }) => run.stdout.trim().split('\n').length;
    expect(sessions(await runCli(['recompute', '--input', input], { cli }))).toBe(1);
    expect(sessions(await runCli(['recompute', '--input', input], { cli, env: { SESSION_TIMEOUT_MINUTES: '5' } }))).toBe(3);
    expect(sessions(await runCli(['recompute', '--input', input, '--timeout-minutes', '30'], { cli, env: { SESSION_TIMEOUT_MINUTES: '5' } }))).toBe(1);
    const bad = await runCli(['recompute', '--input', input], { cli, env: { SESSION_TIMEOUT_MINUTES: 'half an hour' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^sessionizer: invalid configuration: SESSION_TIMEOUT_MINUTES: /);
  }, 60_000);
});
