/**
 * Environment variables that deploy files give sessionizer containers, checked against the one
 * source of truth, `configSchema` (src/config.ts): every key is a setting (or `<password>_FILE`),
 * passwords come only from files, the required connection settings are there, and the values
 * load — through `loadConfig` itself, with each *_FILE pointed at a stand-in file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, loadConfig, type Config } from '../../../src/config';

export const CONFIG_KEYS: readonly string[] = Object.keys(configSchema.shape);
/** Settings that are credentials: only ever given as `<name>_FILE` by deploy files. */
export const SECRET_KEYS: readonly string[] = CONFIG_KEYS.filter((k) => k.endsWith('PASSWORD') || k === 'COLLECT_WRITE_KEYS' || k === 'DASHBOARD_SESSION_SECRET');

/** What each *_FILE holds in the check: long enough for every secret's rule (the session secret wants 32+). */
export const STAND_IN_SECRET = 'stand-in-secret-of-more-than-32-characters';

export interface EnvCheck {
  problems: string[];
  config: Config | null;
}

/** `required`: keys that must be set (a secret key counts as set through its _FILE). */
export function checkEnv(env: Record<string, string>, required: readonly string[]): EnvCheck {
  const problems: string[] = [];
  for (const key of Object.keys(env)) {
    const secretFile = key.endsWith('_FILE') && SECRET_KEYS.includes(key.slice(0, -'_FILE'.length));
    if (!CONFIG_KEYS.includes(key) && !secretFile) problems.push(`${key} is not a setting of src/config.ts`);
    if (SECRET_KEYS.includes(key)) problems.push(`${key} is given inline: use ${key}_FILE`);
  }
  for (const key of required) {
    if (env[key] === undefined && env[`${key}_FILE`] === undefined) problems.push(`${key} is required here`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'deploy-env-'));
  let config: Config | null = null;
  try {
    const local: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) {
      if (key.endsWith('_FILE')) {
        const file = join(dir, key);
        writeFileSync(file, `${STAND_IN_SECRET}\n`);
        local[key] = file;
      } else {
        local[key] = value;
      }
    }
    config = loadConfig(local);
  } catch (err) {
    problems.push((err as Error).message);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { problems, config };
}

/** Stringifies YAML scalars the way a container runtime passes them (numbers and booleans become text). */
export function asEnv(values: Record<string, unknown> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(values ?? {})) env[key] = value === null || value === undefined ? '' : String(value);
  return env;
}
