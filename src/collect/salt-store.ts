/**
 * The daily salts and "last seen" markers of cookieless ids, in Redis, shared by every collector
 * replica. A salt is 32 random bytes for one UTC day, created by whichever replica needs it
 * first (SET NX, so concurrent replicas agree on one) and deleted by Redis at the end of the next
 * day. Markers are keyed by the hashed id, never by an address, and live for T.
 *
 * Keys: `<prefix>collect:salt:<YYYY-MM-DD>` (raw bytes), `<prefix>collect:seen:<id>` (epoch ms).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { saltExpiresAtMs } from './cookieless-id';

export const SALT_BYTES = 32;

export class SaltStore {
  /** Salts never change once made, so each replica keeps the ones it has read. */
  private readonly cache = new Map<string, Buffer>();
  private readonly missing = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  saltKey(day: string): string {
    return `${this.prefix}collect:salt:${day}`;
  }

  seenKey(id: string): string {
    return `${this.prefix}collect:seen:${id}`;
  }

  /** The salt of `day`, made now when no replica has made it yet. `nowMs` sets its time to live. */
  async saltFor(day: string, nowMs: number): Promise<Buffer> {
    const cached = this.cache.get(day);
    if (cached) return cached;
    const ttlMs = saltExpiresAtMs(day) - nowMs;
    const key = this.saltKey(day);
    // SET NX … GET (Redis ≥ 7): one atomic round trip that returns the salt already there, or
    // nothing when ours was stored.
    const mine = randomBytes(SALT_BYTES);
    const previous = await this.redis.setBuffer(key, mine, 'PX', Math.max(1, ttlMs), 'NX', 'GET');
    const salt = previous ?? mine;
    this.remember(day, salt);
    return salt;
  }

  /**
   * The salt of `day` if it still exists (never creates one). A missing past salt never comes
   * back, so its absence is remembered for a minute instead of asked on every request.
   */
  async existingSalt(day: string, nowMs: number): Promise<Buffer | null> {
    const cached = this.cache.get(day);
    if (cached) return cached;
    const missingUntil = this.missing.get(day);
    if (missingUntil !== undefined && nowMs < missingUntil) return null;
    const salt = await this.redis.getBuffer(this.saltKey(day));
    if (salt) this.remember(day, salt);
    else this.missing.set(day, nowMs + 60_000);
    return salt;
  }

  async lastSeen(id: string): Promise<number | null> {
    const value = await this.redis.get(this.seenKey(id));
    return value === null ? null : Number(value);
  }

  async markSeen(id: string, nowMs: number, ttlMs: number): Promise<void> {
    await this.redis.set(this.seenKey(id), String(nowMs), 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  /** Forgets cached salts of days other than these (a replica never needs older ones). */
  keepOnly(days: readonly string[]): void {
    for (const day of this.cache.keys()) if (!days.includes(day)) this.cache.delete(day);
    for (const day of this.missing.keys()) if (!days.includes(day)) this.missing.delete(day);
  }

  private remember(day: string, salt: Buffer): void {
    this.cache.set(day, salt);
    if (this.cache.size > 4) this.cache.delete(this.cache.keys().next().value as string);
  }
}
