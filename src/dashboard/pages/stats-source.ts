/**
 * What the pages ask of the Stats API: Plausible's Stats API v2 query shape, answered by the one
 * query builder the API route uses too (src/dashboard/stats/query.ts), so every figure on a page
 * is the figure the API and `report` give. The pages only build queries and read answers; a test
 * can hand them any function of this type.
 */

/** A filter as the Stats API takes it: `["is", "visit:source", ["Google"]]`. */
export type StatsFilter = [operator: string, dimension: string, values: string[]];

export interface StatsQuery {
  site_id: string;
  metrics: string[];
  /** "day", "7d", "30d", "month", "12mo", or an inclusive pair of dates (YYYY-MM-DD) or ISO date-times. */
  date_range: string | [string, string];
  dimensions?: string[];
  filters?: StatsFilter[];
  order_by?: [string, 'asc' | 'desc'][];
  pagination?: { limit: number; offset?: number };
}

export interface StatsResultRow {
  metrics: (number | null)[];
  dimensions: string[];
}

export interface StatsResponse {
  results: StatsResultRow[];
}

export type StatsSource = (query: StatsQuery) => Promise<StatsResponse>;
