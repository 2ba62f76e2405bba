/**
 * `sessionizer recompute --since D --sink clickhouse`: the usage rules, checked before anything
 * connects to a service (exit code 2 with a one-line reason, the command line), and the --since format.
 */
import { InvalidArgumentError } from 'commander';
import { main } from '../../../src/cli';
import { parseSince } from '../../../src/commands/recompute-command';
import { parseKeyShard } from '../../../src/recalc/key-shard';

async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(['node', 'sessionizer', 'recompute', ...args]);
    return { code, stderr };
  } finally {
    spy.mockRestore();
  }
}

describe('recompute --since/--sink usage', () => {
  it.each([
    [[], /--input FILE\|-, or --since DATE --sink clickhouse/],
    [['--since', '2024-05-01'], /--since needs --sink clickhouse/],
    [['--sink', 'clickhouse'], /--sink clickhouse needs --since/],
    [['--since', '2024-05-01', '--sink', 'clickhouse', '--input', 'events.ndjson'], /--input apply to files only/],
    [['--since', '2024-05-01', '--sink', 'clickhouse', '--output', 'x', '--rejects', 'y'], /--output, --rejects apply to files only/],
    [['--since', '2024-05-01', '--sink', 'stdout'], /Allowed choices are clickhouse/],
    [['--since', 'yesterday', '--sink', 'clickhouse'], /expected YYYY-MM-DD or an ISO-8601 date-time/],
    [['--since', '2024-02-30', '--sink', 'clickhouse'], /day out of range/],
    [['--input', 'events.ndjson', '--shard', '0/2'], /--shard needs --since DATE --sink clickhouse/],
    [['--since', '2024-05-01', '--sink', 'clickhouse', '--shard', '3/3'], /expected I\/N with 0 <= I < N/],
    [['--since', '2024-05-01', '--sink', 'clickhouse', '--shard', '1/0'], /expected I\/N/],
    [['--since', '2024-05-01', '--sink', 'clickhouse', '--shard', '-1/2'], /expected I\/N/],
  ])('exits 2 for %j', async (args, message) => {
    const { code, stderr } = await run(args as string[]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message as RegExp);
  });
});

describe('parseSince', () => {
  it('reads a day as midnight UTC and an instant with its zone', () => {
    expect(parseSince('2024-05-01')).toBe(Date.UTC(2024, 4, 1));
    expect(parseSince('2024-05-01T12:30:00Z')).toBe(Date.UTC(2024, 4, 1, 12, 30));
    expect(parseSince('2024-05-01T12:30:00.250+02:00')).toBe(Date.UTC(2024, 4, 1, 10, 30, 0, 250));
  });

  it('rejects an instant without a zone', () => {
    expect(() => parseSince('2024-05-01T12:30:00')).toThrow(InvalidArgumentError);
  });
});

describe('parseKeyShard', () => {
  it('reads I/N, I counted from 0 like a Kubernetes Indexed Job completion index', () => {
    expect(parseKeyShard('0/3')).toEqual({ index: 0, count: 3 });
    expect(parseKeyShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(parseKeyShard('0/1')).toEqual({ index: 0, count: 1 });
    expect(() => parseKeyShard('1/1')).toThrow(InvalidArgumentError);
    expect(() => parseKeyShard('a/3')).toThrow(InvalidArgumentError);
  });
});
