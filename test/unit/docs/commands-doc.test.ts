/**
 * Every `sessionizer …` command the README and docs/ show — in code blocks and in backticks —
 * names a command that exists, with options that command takes: a new user copies them as they
 * are. (A renamed or removed flag would otherwise fail on their first try.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../../src/cli';

const REPO = join(__dirname, '..', '..', '..');
const FILES = ['README.md', ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

interface Usage {
  file: string;
  text: string;
}

/** `sessionizer <command> …` up to a comment, a pipe, a redirection or the end of the span. */
function usages(file: string): Usage[] {
  const markdown = readFileSync(join(REPO, file), 'utf8');
  const found: Usage[] = [];
  const codeLines: string[] = [];
  let inCode = false;
  for (const line of markdown.split('\n')) {
    if (line.trim().startsWith('```')) inCode = !inCode;
    else if (inCode && /\bsessionizer [a-z]/.test(line.replace(/(^|\s)#.*$/, ''))) codeLines.push(line.replace(/(^|\s)#.*$/, ''));
  }
  const spans = [...codeLines, ...[...markdown.matchAll(/`((?:npx )?sessionizer [a-z][^`]*)`/g)].map((m) => m[1] as string)];
  for (const span of spans) {
    const at = span.search(/\bsessionizer [a-z]/);
    const text = span.slice(at).split(/\s+#|\s\||\s&|\s>|;/)[0] as string;
    found.push({ file, text: text.trim() });
  }
  return found;
}

function resolve(program: Command, words: string[]): { command: Command; rest: string[] } {
  let command = program;
  let i = 0;
  while (i < words.length) {
    const next = command.commands.find((c) => c.name() === words[i]);
    if (!next) break;
    command = next;
    i += 1;
  }
  return { command, rest: words.slice(i) };
}

describe('the commands shown in the docs', () => {
  const all = FILES.flatMap(usages);

  it('are found (the check is not vacuous)', () => {
    expect(all.length).toBeGreaterThan(30);
  });

  it.each(FILES)('%s: every command exists and takes every option shown', (file) => {
    const program = buildProgram();
    const problems: string[] = [];
    for (const usage of all.filter((u) => u.file === file)) {
      const words = usage.text.split(/\s+/).slice(1); // after "sessionizer"
      const { command, rest } = resolve(program, words);
      if (command === program) {
        problems.push(`${usage.text}: no command ${words[0]}`);
        continue;
      }
      const known = new Set([...command.options, ...program.options].flatMap((o) => [o.long, o.short]).filter(Boolean));
      known.add('--help');
      for (const flag of rest.join(' ').match(/--[a-z][a-z-]*/g) ?? []) {
        if (!known.has(flag)) problems.push(`${usage.text}: ${command.name()} has no ${flag}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
