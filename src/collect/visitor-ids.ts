/**
 * Chooses the cookieless id of a request: today's hash, or yesterday's while a visit that began
 * before midnight UTC goes on (its id was seen less than T ago), so midnight splits no session.
 * The clock is injected: tests move it across midnight.
 */
import { continuesVisit, cookielessId, needsLastSeenMarker, previousUtcDay, utcDay } from './cookieless-id';
import type { SaltStore } from './salt-store';

export interface VisitorIdOptions {
  /** Session timeout T in ms. */
  timeoutMs: number;
  /** Epoch ms now; `Date.now` outside tests. */
  now?: () => number;
}

export class VisitorIds {
  private readonly now: () => number;

  constructor(
    private readonly salts: SaltStore,
    private readonly options: VisitorIdOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The anonymous id of a visitor who sent no id: site, IP and User-Agent stay in memory only. */
  async idFor(siteId: string, ip: string, userAgent: string): Promise<string> {
    const nowMs = this.now();
    const today = utcDay(nowMs);
    const yesterday = previousUtcDay(nowMs);
    this.salts.keepOnly([today, yesterday]);
    const [todaySalt, yesterdaySalt] = await Promise.all([this.salts.saltFor(today, nowMs), this.salts.existingSalt(yesterday, nowMs)]);
    let id = cookielessId(todaySalt, siteId, ip, userAgent);
    let usedYesterday = false;
    if (yesterdaySalt) {
      const previous = cookielessId(yesterdaySalt, siteId, ip, userAgent);
      if (continuesVisit(await this.salts.lastSeen(previous), nowMs, this.options.timeoutMs)) {
        id = previous;
        usedYesterday = true;
      }
    }
    if (needsLastSeenMarker(nowMs, this.options.timeoutMs, usedYesterday)) await this.salts.markSeen(id, nowMs, this.options.timeoutMs);
    return id;
  }
}
