/**
 * The Dockerfile as the deploy tests read it: stages with their base image (ARG defaults
 * substituted) and instructions, plus the `.dockerignore` rules that decide what the build
 * context holds. Parsing is dockerfile-ast's (the parser of the Dockerfile language server).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';

export const REPO = resolve(__dirname, '../../..');

export interface Step {
  keyword: string;
  /** Arguments as written, continuation lines joined. */
  args: string;
  /** Whitespace-separated arguments (without the flags of COPY, HEALTHCHECK, …). */
  words: string[];
  /** `--name=value` flags. */
  flags: Record<string, string>;
  line: number;
}

export interface Stage {
  name: string;
  image: string;
  steps: Step[];
}

export interface DockerfileModel {
  text: string;
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

function step(instruction: Instruction): Step {
  const args = instruction.getArgumentsContent() ?? '';
  // COPY, HEALTHCHECK and the like parse their `--flag=value`s apart from the arguments.
  const flags: Record<string, string> = {};
  const withFlags = instruction as Instruction & { getFlags?: () => Array<{ getName(): string; getValue(): string | null }> };
  for (const flag of withFlags.getFlags?.() ?? []) flags[flag.getName()] = flag.getValue() ?? '';
  const words = instruction.getArguments().map((a) => a.getValue());
  return { keyword: instruction.getKeyword(), args, words, flags, line: instruction.getRange().start.line + 1 };
}

export function readDockerfile(path = join(REPO, 'Dockerfile')): DockerfileModel {
  const text = readFileSync(path, 'utf8');
  const parsed = DockerfileParser.parse(text);
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of parsed.getInstructions()) {
    const keyword = instruction.getKeyword();
    if (keyword === 'FROM') {
      const [image = '', as, name] = instruction.getArguments().map((a) => a.getValue());
      const resolved = image.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, arg: string) => globalArgs[arg] ?? `\${${arg}}`);
      stages.push({ name: as?.toUpperCase() === 'AS' && name ? name : String(stages.length), image: resolved, steps: [] });
    } else if (stages.length === 0) {
      if (keyword === 'ARG') {
        const [name = '', value = ''] = (instruction.getArgumentsContent() ?? '').split('=');
        globalArgs[name.trim()] = value.trim();
      }
    } else {
      (stages[stages.length - 1] as Stage).steps.push(step(instruction));
    }
  }
  return { text, globalArgs, stages };
}

/** The JSON array of an exec-form instruction (`["node", "dist/cli.js"]`), or null for the shell form. */
export function execForm(args: string): string[] | null {
  try {
    const value: unknown = JSON.parse(args);
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : null;
  } catch {
    return null;
  }
}

/**
 * Whether `.dockerignore` keeps `path` (relative, `/`-separated) out of the build context:
 * Docker's rules, as far as this project uses them — patterns in order, the last match wins,
 * `!` re-includes, `*` and `?` stay within one path segment, `**` spans segments, and a
 * pattern that matches a directory matches everything under it.
 */
export function dockerIgnored(rules: readonly string[], path: string): boolean {
  let ignored = false;
  for (const raw of rules) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    if (!pattern) continue;
    const regex = new RegExp(
      '^' +
        pattern
          .split('/')
          .map((segment) => (segment === '**' ? '.*' : segment.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
          .join('/') +
        '(/.*)?$',
    );
    if (regex.test(path)) ignored = !negate;
  }
  return ignored;
}

export function readDockerignore(path = join(REPO, '.dockerignore')): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
}

/** Sources and destination of a COPY step (the last word is the destination). */
export function copyParts(copy: Step): { sources: string[]; destination: string } {
  const words = copy.words;
  return { sources: words.slice(0, -1), destination: words[words.length - 1] ?? '' };
}
