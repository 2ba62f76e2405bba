/** What `--help` tells a new user: which options must be given, and what the defaults are. */
import { buildProgram } from '../../../src/cli';

function helpOf(...path: string[]): string {
  let command = buildProgram();
  for (const name of path) command = command.commands.find((c) => c.name() === name) ?? command;
  return command.helpInformation();
}

describe('--help', () => {
  it('marks the options that must be given', () => {
    expect(helpOf('produce')).toMatch(/--input <file>\s+\(required\) events NDJSON/);
    expect(helpOf('reset')).toMatch(/--dry-run\s+\(required: this or --yes\)/);
    expect(helpOf('forget')).toMatch(/--user-id <id>\s+\(required: this or --anonymous-id\)/);
    expect(helpOf('recompute')).toMatch(/--input <file>\s+\(required, unless --since and --sink/);
  });

  it('report needs no dates: the last 30 days by default', () => {
    const help = helpOf('report');
    expect(help).not.toMatch(/required/);
    expect(help).toMatch(/--to <date>\s+last day, YYYY-MM-DD, inclusive \(default: today, UTC\)/);
    expect(help).toMatch(/the last 30 days/);
  });
});
