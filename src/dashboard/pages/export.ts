/**
 * CSV exports: one panel tab as a CSV, or the whole view as a zip of CSVs (as Plausible's export
 * is: visitors.csv by time bucket with every card's metric, then one file per breakdown).
 * Cells that a spreadsheet would run as a formula (a campaign named "=HYPERLINK(…)") are
 * prefixed with a quote, since the names come from whoever sends events.
 */
import { zipSync, strToU8 } from 'fflate';
import { CARD_METRIC_NAMES, PANELS, type PanelTab } from './catalog';
import { bucketKey, bucketsOf, defaultInterval, intervalsFor, localNow, rangeOf, type DayRange } from './date-range';
import { baseQuery, breakdown, isUnanswerable, peopleRows, type SiteViewInput } from './site-view';

/** Rows of a full breakdown in an export (a panel shows the top 10). */
export const EXPORT_ROWS = 10_000;

function cell(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(header: readonly string[], rows: readonly (readonly (string | number | null)[])[]): string {
  return [header, ...rows].map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}

export function rangeOfInput(input: SiteViewInput): DayRange {
  return rangeOf(input.state, localNow(input.now, input.timeZone).day);
}

export async function panelCsv(input: SiteViewInput, tab: PanelTab): Promise<string> {
  if (tab.people) {
    // Groups of identified people, each with its share of them (the cross-device share is the first row's).
    const { rows, people } = await peopleRows(input, rangeOfInput(input));
    const shareOf = (n: number) => Math.round((10_000 * n) / people.identified) / 100;
    return toCsv(['name', 'people', 'visits', 'share'], rows.map((r) => [r.name, r.visitors, r.visits, shareOf(r.visitors)]));
  }
  const rows = await breakdown(input, rangeOfInput(input), tab, EXPORT_ROWS);
  return toCsv(['name', 'visitors', 'visits'], rows.map((r) => [r.name, r.visitors, r.visits]));
}

export async function timeSeriesCsv(input: SiteViewInput): Promise<string> {
  const range = rangeOfInput(input);
  const wanted = input.state.interval;
  const interval = wanted !== undefined && intervalsFor(range).includes(wanted) ? wanted : defaultInterval(range);
  const response = await input.stats({ ...baseQuery(input, range, CARD_METRIC_NAMES), dimensions: [`time:${interval}`] });
  const byKey = new Map(response.results.map((r) => [bucketKey(r.dimensions[0] ?? '', interval), r.metrics]));
  const rows = bucketsOf(range, interval).map((label) => {
    const metrics = byKey.get(bucketKey(label, interval));
    return [label, ...CARD_METRIC_NAMES.map((_, i) => (metrics ? (metrics[i] ?? null) : 0))];
  });
  return toCsv(['date', ...CARD_METRIC_NAMES], rows);
}

/** The file name of a view's export: site, range and the time it was made. */
export function exportName(input: SiteViewInput, extension: string, part?: string): string {
  const range = rangeOfInput(input);
  const safeSite = input.site.replace(/[^a-z0-9._-]/g, '_');
  return `${safeSite}${part ? `_${part}` : ''}_${range.from}_${range.to}.${extension}`;
}

export async function viewZip(input: SiteViewInput): Promise<Uint8Array> {
  const tabs = PANELS.flatMap((p) => p.tabs);
  // A tab the Stats API cannot answer is left out of the zip.
  const orNothing = (csv: Promise<string>) => csv.catch((err: unknown) => {
    if (isUnanswerable(err)) return undefined;
    throw err;
  });
  const [visitors, ...breakdowns] = await Promise.all([timeSeriesCsv(input), ...tabs.map((tab) => orNothing(panelCsv(input, tab)))]);
  const files: Record<string, Uint8Array> = { 'visitors.csv': strToU8(visitors as string) };
  tabs.forEach((tab, i) => {
    const csv = breakdowns[i];
    if (csv !== undefined) files[tab.file] = strToU8(csv);
  });
  return zipSync(files, { level: 6, mtime: input.now });
}
