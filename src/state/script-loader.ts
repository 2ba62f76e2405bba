/**
 * Registers the Lua scripts in `scripts/` as ioredis commands. A file named
 * `camelName-<numberOfKeys>.lua` gets a fixed key count; one without the suffix takes the key
 * count as its first argument at call time (for scripts whose key count depends on the batch).
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
}

export function defineStateCommands(redis: Redis): Redis & StateCommands {
  for (const file of readdirSync(SCRIPT_DIR)) {
    const match = /^([a-zA-Z]+)(?:-(\d+))?\.lua$/.exec(file);
    if (!match) continue;
    const [, name, keys] = match as unknown as [string, string, string | undefined];
    const lua = readFileSync(join(SCRIPT_DIR, file), 'utf8');
    redis.defineCommand(name, keys === undefined ? { lua } : { lua, numberOfKeys: Number(keys) });
  }
  return redis as Redis & StateCommands;
}
