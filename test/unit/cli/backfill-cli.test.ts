/**
 * `sessionizer produce --input FILE --backfill`: the usage rules and unreadable inputs, refused
 * with exit code 2 and a one-line reason before anything connects to a service.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { main } from '../../../src/cli';

let work = '';
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'backfill-cli-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    // Nothing listens here: reaching a service would fail with exit 1, not 2.
    process.env.CLICKHOUSE_URL = 'http://127.0.0.1:1';
    const code = await main(['node', 'sessionizer', 'produce', ...args]);
    return { code, stderr };
  } finally {
    spy.mockRestore();
    delete process.env.CLICKHOUSE_URL;
  }
}

describe('produce --backfill', () => {
  it('refuses --topic (it writes to ClickHouse)', async () => {
    const input = join(work, 'events.ndjson');
    writeFileSync(input, '{}\n');
    const { code, stderr } = await run(['--input', input, '--backfill', '--topic', 'events']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--backfill writes to ClickHouse, not to a topic/);
  });

  it.each([
    ['a missing file', () => join(work, 'missing.ndjson'), /cannot read .*missing\.ndjson/],
    [
      'a gzip file',
      () => {
        const path = join(work, 'events.ndjson.gz');
        writeFileSync(path, gzipSync('{}\n'));
        return path;
      },
      /cannot read .*events\.ndjson\.gz: not UTF-8 text but gzip-compressed data/,
    ],
  ])('exits 2 for %s, in one line', async (_, path, message) => {
    const { code, stderr } = await run(['--input', path(), '--backfill']);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});
