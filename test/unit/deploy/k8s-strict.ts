/**
 * Unknown-field check for Kubernetes objects. The JSON schemas of `kubernetes-models` validate
 * types, enums and required fields but, like the API's OpenAPI schemas, allow extra properties,
 * so a typo (`livenesProbe`) would pass and be silently dropped by the API server's pruning.
 * This walks an object alongside the models' TypeScript declarations (one interface per file,
 * nested types imported from other files) and reports every property the API does not have.
 * Free-form maps (labels, data, resources) and inline types are not descended into.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

interface Shape {
  /** property → declaration file of its type, or null when the type is not a model interface. */
  properties: Map<string, string | null>;
}

const shapes = new Map<string, Shape>();

function resolveImport(fromFile: string, specifier: string): string | null {
  if (specifier.startsWith('.')) {
    const file = join(dirname(fromFile), `${specifier}.d.ts`);
    return existsSync(file) ? file : null;
  }
  const [scope, name, ...rest] = specifier.split('/');
  const pkg = scope?.startsWith('@') ? `${scope}/${name}` : (scope as string);
  const subpath = scope?.startsWith('@') ? rest : [name as string, ...rest];
  const root = dirname(require.resolve(`${pkg}/package.json`));
  const file = join(root, ...subpath) + '.d.ts';
  return existsSync(file) ? file : null;
}

function shapeOf(file: string): Shape {
  const cached = shapes.get(file);
  if (cached) return cached;
  const text = readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const match of text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)) imports.set(match[1] as string, match[2] as string);
  const body = /export interface \w+[^{]*\{\n([\s\S]*?)\n\}/.exec(text)?.[1] ?? '';
  const properties = new Map<string, string | null>();
  for (const match of body.matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
    const typeName = /^(?:Array<)?(\w+)/.exec(match[2] as string)?.[1];
    const specifier = typeName ? imports.get(typeName) : undefined;
    properties.set(match[1] as string, specifier ? resolveImport(file, specifier) : null);
  }
  const shape = { properties };
  shapes.set(file, shape);
  return shape;
}

/** Paths of properties in `value` that the declaration in `file` does not know. */
export function unknownFields(value: unknown, file: string, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => unknownFields(item, file, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  const shape = shapeOf(file);
  if (shape.properties.size === 0) return [];
  const problems: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    if (!shape.properties.has(key)) {
      problems.push(`${path}.${key}`);
      continue;
    }
    const nested = shape.properties.get(key);
    if (nested) problems.push(...unknownFields(item, nested, `${path}.${key}`));
  }
  return problems;
}

/** The declaration file of a model class, e.g. ('kubernetes-models', 'apps/v1/Deployment'). */
export function declarationOf(pkg: string, model: string): string {
  return join(dirname(require.resolve(`${pkg}/package.json`)), `${model}.d.ts`);
}
