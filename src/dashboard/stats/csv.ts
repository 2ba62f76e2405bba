/**
 * A Stats API answer as CSV (quoted as RFC 4180 says, lines ending in LF as `report --format csv` writes them, with a header line): one column per dimension, then
 * one per metric, named as in the query. The pages' "export" and the API's `Accept: text/csv`
 * both come here, so an export holds exactly the figures shown.
 */
import { csvField } from '../../clickhouse/report-format';
import type { StatsResponse } from './query-types';

/**
 * A cell that a spreadsheet would take for a formula (=, +, -, @ first) is prefixed with an
 * apostrophe: dimension values come from visitors (pages, campaigns) and must not run as
 * formulas when the file is opened.
 */
function safeText(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

export function statsToCsv(answer: StatsResponse): string {
  const header = [...answer.query.dimensions, ...answer.query.metrics].map(csvField).join(',');
  const lines = answer.results.map((row) => [...row.dimensions.map((d) => csvField(safeText(d))), ...row.metrics.map((m) => csvField(m))].join(','));
  return `${[header, ...lines].join('\n')}\n`;
}
