/**
 * Registers the Lua scripts in `scripts/` as ioredis commands. A file named
 * `camelName-<numberOfKeys>.lua` gets a fixed key count; one without the suffix takes the key
 * count as its first argument at call time (for scripts whose key count depends on the batch).
 * A line `--!include _name.lua` is replaced by that file (shared functions; files whose name
 * starts with `_` are not commands). ioredis also defines `<name>Buffer`, which replies with
 * Buffers instead of strings.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Redis from 'ioredis';

const SCRIPT_DIR = join(__dirname, 'scripts');

export interface StateCommands {
  claimPartition(meta: string, nonce: string, topicId: string): Promise<[string, string, string, string, string, string, string, string, string]>;
  markRepair(meta: string, close: string, repair: string, epoch: string, until: string, reach: string): Promise<number | [string, string]>;
  clearRepair(meta: string, repair: string, base: string, writes: string, epoch: string): Promise<number>;
  commitBatch(numberOfKeys: number, ...keysAndArgs: Array<string | Buffer>): Promise<number>;
  ackOutbox(meta: string, outbox: string, epoch: string, seq: string): Promise<number>;
  readIdleBuffer(meta: string, prefix: string, ...userKeys: string[]): Promise<Array<Buffer | null>>;
  sweepIdle(meta: string, epoch: string, prefix: string, nowMinute: string, callsPerRound: string): Promise<number>;
}

const INCLUDE = /^--!include (_[A-Za-z]+\.lua)$/gm;

/** A script's text with its `--!include` lines replaced by the files they name. */
export function scriptText(file: string): string {
  return readFileSync(join(SCRIPT_DIR, file), 'utf8').replace(INCLUDE, (_, name: string) => readFileSync(join(SCRIPT_DIR, name), 'utf8'));
}

export function defineStateCommands(redis: Redis): Redis & StateCommands {
  for (const file of readdirSync(SCRIPT_DIR)) {
    const match = /^([a-zA-Z]+)(?:-(\d+))?\.lua$/.exec(file);
    if (!match) continue;
    const [, name, keys] = match as unknown as [string, string, string | undefined];
    const lua = scriptText(file);
    redis.defineCommand(name, keys === undefined ? { lua } : { lua, numberOfKeys: Number(keys) });
  }
  return redis as Redis & StateCommands;
}
