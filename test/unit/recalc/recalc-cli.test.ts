/**
 * `sessionizer recompute --since D --sink clickhouse`: the usage rules, checked before anything
 * connects to a service (exit code 2 with a one-line reason, SPEC §5), and the --since format.
 */
import { InvalidArgumentError } from 'commander';
import { main } from '../../../src/cli';
import { parseSince } from '../../../src/commands/recompute-command';

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
