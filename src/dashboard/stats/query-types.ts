/** The Stats API query and answer (Plausible's Stats API v2 shape; docs/dashboard.md). */
import type { Period } from './date-range';

export const FILTER_OPERATORS = ['is', 'is_not', 'contains', 'contains_not', 'matches', 'matches_not'] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

export type Filter =
  | ['and' | 'or', Filter[]]
  | ['not', Filter]
  | [FilterOperator, string, string[], { case_sensitive?: boolean }?];

export interface StatsQuery {
  site_id: string;
  metrics: string[];
  date_range: Period | [string, string];
  dimensions: string[];
  filters: Filter[];
  /** Absent: the default order (time ascending, else the first metric descending). */
  order_by?: [string, 'asc' | 'desc'][];
  pagination: { limit: number; offset: number };
  include: { time_labels: boolean; total_rows: boolean; imports: boolean };
}

export interface StatsRow {
  metrics: number[];
  dimensions: string[];
}

export interface StatsResponse {
  results: StatsRow[];
  meta: {
    /** With include.time_labels: every bucket of the range, in order (rows exist only for buckets with data). */
    time_labels?: string[];
    /** With include.total_rows: rows before pagination. */
    total_rows?: number;
    /** We hold no imported data: always false. */
    imports_included?: boolean;
    /** Why something asked for was left out. */
    imports_warning?: string;
  };
  query: {
    site_id: string;
    metrics: string[];
    /** The days covered, YYYY-MM-DD, inclusive, in the site's time zone. */
    date_range: [string, string];
    dimensions: string[];
    filters: Filter[];
    order_by?: [string, 'asc' | 'desc'][];
    include: StatsQuery['include'];
    pagination: StatsQuery['pagination'];
    /** The site's time zone, in which the days are counted. */
    timezone: string;
  };
}
