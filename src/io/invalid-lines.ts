/**
 * What `recompute` and `produce` say about invalid lines on stderr: the first few one by one
 * (line number and reason), then how many there were of each reason. A file that is not events
 * at all (a README, a CSV) would otherwise bury the terminal in a hundred near-identical lines;
 * the full list is what recompute's `--rejects FILE` is for. Pure: the caller writes the text.
 */

import { reasonOf } from '../events/reason';

/** Invalid lines described one by one; the rest are only counted. */
export const LISTED_INVALID_LINES = 5;
/** Reasons named in the summary; the others are counted together. */
const LISTED_REASONS = 5;

export class InvalidLineReport {
  private listed = 0;
  private total = 0;
  private readonly byReason = new Map<string, number>();

  /**
   * `noun`: what the summary calls the lines ("invalid lines", "skipped lines"); `prefix`: what
   * each listed line says before its reason ("skipped, " for produce).
   */
  constructor(
    private readonly listLimit = LISTED_INVALID_LINES,
    private readonly words: { noun?: string; prefix?: string; rejectsOption?: boolean } = {},
  ) {}

  /** Counts one invalid line; returns the text to print for it, or null once the first few were listed. */
  add(lineNumber: number, message: string): string | null {
    this.total += 1;
    const reason = reasonOf(message);
    const text = `${this.words.prefix ?? ''}${message}`;
    this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + 1);
    if (lineNumber <= 0 || this.listed >= this.listLimit) return null;
    this.listed += 1;
    return `line ${lineNumber}: ${text}\n`;
  }

  get count(): number {
    return this.total;
  }

  /**
   * After the listed lines: how many more there were, and the counts by reason (most frequent
   * first). Empty when every invalid line was listed.
   */
  summary(rejectsPath?: string): string {
    if (this.total <= this.listed) return '';
    const reasons = [...this.byReason.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const named = reasons.slice(0, LISTED_REASONS).map(([reason, n]) => `${n} ${reason}`);
    const others = reasons.slice(LISTED_REASONS).reduce((sum, [, n]) => sum + n, 0);
    if (others > 0) named.push(`${others} for ${reasons.length - LISTED_REASONS} other reasons`);
    const where = rejectsPath ? ` (every one in ${rejectsPath})` : this.words.rejectsOption === false ? '' : ' (add --rejects FILE for every one)';
    return `… and ${this.total - this.listed} more ${this.words.noun ?? 'invalid lines'}${where}; by reason: ${named.join('; ')}\n`;
  }
}
