/**
 * A site's page, server-rendered: period picker, filter chips, top cards, the chart's data and
 * a table of it, the breakdown panels and people. Every control is a real link or form, so the
 * page works from the keyboard and without script; the script only draws the chart and keeps
 * the current-visitors count fresh.
 */
import { CARD_METRICS, PANELS, type CardMetric } from './catalog';
import { changeOf, formatMetric } from './format';
import { html, jsonScript, type Html } from './html';
import { ASSET_PREFIX, layout, type LayoutInput } from './layout';
import type { PanelData, SiteView } from './site-view';
import { searchOf, withFilter, withoutFilter, type Period, type ViewState } from './view-state';
import { DEFAULT_METRIC } from './catalog';

export interface SiteLinks {
  /** The page's own path, e.g. "/example.com" (a shared view has its own). */
  page: string;
  /** Query parameters every link of the page keeps (a shared link's token), already encoded. */
  keep?: string;
  /** Routes relative to the page: CSV, zip, current visitors. */
  panelCsv: (panel: string, tab: string) => string;
  zip: string;
  currentVisitors: string;
}

const PERIOD_LABELS: Readonly<Record<Period, string>> = {
  day: 'Today',
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
  month: 'This month',
  '12mo': 'Last 12 months',
  custom: 'Custom range',
};

const FILTER_LABELS: Readonly<Record<string, string>> = {
  channel: 'Channel',
  source: 'Source',
  utm_medium: 'Medium',
  utm_campaign: 'Campaign',
  page: 'Page',
  entry_page: 'Entry page',
  exit_page: 'Exit page',
  country: 'Country',
  region: 'Region',
  city: 'City',
  screen: 'Device',
  browser: 'Browser',
  os: 'OS',
  entry_point: 'Entry point',
  visitor_type: 'Visitors',
  goal: 'Key event',
  event: 'Event',
};

const OPERATOR_LABELS: Readonly<Record<string, string>> = { is: 'is', is_not: 'is not', contains: 'contains', contains_not: 'does not contain' };

export function hrefOf(links: SiteLinks, state: ViewState, path = links.page): string {
  const search = searchOf(state, DEFAULT_METRIC);
  if (!links.keep) return `${path}${search}`;
  return `${path}${search === '' ? '?' : `${search}&`}${links.keep}`;
}

function periodPicker(view: SiteView, links: SiteLinks): Html {
  const state = view.state;
  const plain = { ...state, date: undefined, from: undefined, to: undefined, interval: undefined };
  const options = (['day', '7d', '30d', 'month', '12mo'] as const).map((period) => {
    const current = state.period === period && state.date === undefined;
    return html`<li><a href="${hrefOf(links, { ...plain, period })}"${current ? html` aria-current="true"` : ''}>${PERIOD_LABELS[period]}</a></li>`;
  });
  const compare = { ...state, comparison: !state.comparison };
  return html`<div class="controls">
  <nav class="periods" aria-label="Period"><ul>${options}</ul></nav>
  <form class="custom" method="get" action="${links.page}">
    ${hiddenInputs(links, state)}
    <input type="hidden" name="period" value="custom">
    <label>From <input type="date" name="from" value="${view.range.from}" required></label>
    <label>To <input type="date" name="to" value="${view.range.to}" required></label>
    <button type="submit">Apply</button>
  </form>
  <a class="toggle" role="switch" aria-checked="${state.comparison ? 'true' : 'false'}" href="${hrefOf(links, compare)}">Compare with previous period</a>
</div>`;
}

/** The state's other parameters, so submitting the custom-range form keeps filters and the rest. */
function hiddenInputs(links: SiteLinks, state: ViewState): Html[] {
  const inputs: Html[] = [];
  const search = searchOf({ ...state, period: '7d', date: undefined, from: undefined, to: undefined }, DEFAULT_METRIC);
  const all = [search.slice(1), links.keep ?? ''].filter((s) => s !== '').join('&');
  for (const pair of all === '' ? [] : all.split('&')) {
    const eq = pair.indexOf('=');
    const name = decodeURIComponent(pair.slice(0, eq));
    // A filter travels as its URL text ("is,source,Google%2C%20Inc"); the form encodes it once
    // more (commas too), and the parser, finding no raw comma, decodes that layer first.
    const value = name === 'f' ? pair.slice(eq + 1) : decodeURIComponent(pair.slice(eq + 1));
    inputs.push(html`<input type="hidden" name="${name}" value="${value}">`);
  }
  return inputs;
}

function chips(view: SiteView, links: SiteLinks): Html {
  if (view.state.filters.length === 0) return html``;
  const items = view.state.filters.map((f, i) => html`<li class="chip"><span>${FILTER_LABELS[f.key] ?? f.key} ${OPERATOR_LABELS[f.operator] ?? f.operator} <strong>${f.values.join(' or ')}</strong></span>
<a href="${hrefOf(links, withoutFilter(view.state, i))}" aria-label="Remove filter: ${FILTER_LABELS[f.key] ?? f.key} ${f.values.join(' or ')}">×</a></li>`);
  return html`<section class="filters" aria-label="Filters"><ul>${items}</ul>
<a class="clear" href="${hrefOf(links, { ...view.state, filters: [] })}">Clear all</a></section>`;
}

function card(view: SiteView, links: SiteLinks, metric: CardMetric): Html {
  const value = view.cards[metric.name] ?? null;
  const before = view.previousCards[metric.name] ?? null;
  const change = changeOf(value, before, metric.format);
  const good = change === null || change === 0 ? 'flat' : (change > 0) !== (metric.lowerIsBetter === true) ? 'good' : 'bad';
  const arrow = change === null ? '' : change > 0 ? '↑' : change < 0 ? '↓' : '〓';
  const unit = metric.format === 'percent' ? ' pp' : '%';
  const selected = view.state.metric === metric.name;
  return html`<li><a class="card${selected ? ' selected' : ''}" href="${hrefOf(links, { ...view.state, metric: metric.name })}"
 data-metric="${metric.name}" data-value="${value ?? ''}"${selected ? html` aria-current="true"` : ''}>
<span class="label">${metric.label}</span>
<span class="value">${formatMetric(value, metric.format)}</span>
<span class="change ${good}" title="Previous period: ${formatMetric(before, metric.format)}">${change === null ? 'new' : html`<span aria-hidden="true">${arrow}</span> ${Math.abs(change)}${unit}`}<span class="sr-only"> vs previous period</span></span>
</a></li>`;
}

function chart(view: SiteView, links: SiteLinks): Html {
  const c = view.chart;
  const metric = CARD_METRICS.find((m) => m.name === c.metric) ?? (CARD_METRICS[0] as CardMetric);
  const intervals = c.intervals.map((interval) => html`<li><a href="${hrefOf(links, { ...view.state, interval })}"${interval === c.interval ? html` aria-current="true"` : ''}>${interval[0]?.toUpperCase()}${interval.slice(1)}</a></li>`);
  const rows = c.labels.map((label, i) => html`<tr${i === c.incompleteIndex ? html` class="incomplete"` : ''}><th scope="row">${label}${i === c.incompleteIndex ? ' (so far)' : ''}</th><td>${formatMetric(c.values[i], metric.format)}</td>${c.previous ? html`<td>${formatMetric(c.previous[i], metric.format)}</td>` : ''}</tr>`);
  return html`<section class="panel chart-panel" aria-labelledby="chart-title">
<div class="panel-head"><h2 id="chart-title">${metric.label}</h2>
<nav aria-label="Chart interval"><ul class="tabs">${intervals}</ul></nav></div>
<div id="chart" class="chart" data-metric="${c.metric}" data-interval="${c.interval}" aria-hidden="true"></div>
${jsonScript('chart-data', { ...c, label: metric.label, format: metric.format, timeZone: view.timeZone })}
<details class="chart-table"><summary>Chart data as a table</summary>
<table><thead><tr><th scope="col">${c.interval}</th><th scope="col">${metric.label}</th>${c.previous ? html`<th scope="col">Previous period</th>` : ''}</tr></thead>
<tbody>${rows}</tbody></table></details>
</section>`;
}

/**
 * The cross-device tab: identified people seen on several device types and on one, with the
 * share the first make of all. Its rows are people, not sessions, and filter nothing.
 */
function peopleTable(data: PanelData): Html {
  const people = data.people;
  if (!people || people.identified === 0) return html`<p class="empty">No identified people in this period.</p>`;
  const rows = data.rows.map((row) => html`<tr data-name="${row.name}" data-visitors="${row.visitors}" data-visits="${row.visits}">
<th scope="row"><span class="bar" style="width:${((row.visitors / people.identified) * 100).toFixed(1)}%" aria-hidden="true"></span><span>${row.name}</span></th>
<td>${formatMetric(row.visitors, 'count')}</td><td>${formatMetric(row.visits, 'count')}</td></tr>`);
  return html`<p class="figure" data-cross-device-share="${people.crossDeviceShare}" data-identified="${people.identified}"><strong>${formatMetric(people.crossDeviceShare, 'percent')}</strong> of ${formatMetric(people.identified, 'count')} identified people were seen on more than one device type</p>
<table class="breakdown"><thead><tr><th scope="col">${data.tab.heading}</th><th scope="col">People</th><th scope="col">Sessions</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function panel(view: SiteView, links: SiteLinks, data: PanelData): Html {
  const { panel: p, tab } = data;
  const max = Math.max(1, ...data.rows.map((r) => r.visitors));
  const tabs = p.tabs.length > 1
    ? html`<nav aria-label="${p.title} tabs"><ul class="tabs">${p.tabs.map((t) => html`<li><a href="${hrefOf(links, { ...view.state, tabs: { ...view.state.tabs, [p.id]: t.id } })}#panel-${p.id}"${t.id === tab.id ? html` aria-current="true"` : ''}>${t.label}</a></li>`)}</ul></nav>`
    : '';
  const rows = data.rows.map((row) => {
    const name = row.name === '' ? '(none)' : row.name;
    const filtered = hrefOf(links, withFilter(view.state, tab.filterKey, row.name));
    return html`<tr data-name="${row.name}" data-visitors="${row.visitors}" data-visits="${row.visits}">
<th scope="row"><span class="bar" style="width:${((row.visitors / max) * 100).toFixed(1)}%" aria-hidden="true"></span><a href="${filtered}" title="Filter by ${tab.heading}: ${name}">${name}</a></th>
<td>${formatMetric(row.visitors, 'count')}</td><td>${formatMetric(row.visits, 'count')}</td></tr>`;
  });
  return html`<section class="panel" id="panel-${p.id}" data-panel="${p.id}" data-tab="${tab.id}" aria-labelledby="title-${p.id}">
<div class="panel-head"><h2 id="title-${p.id}">${p.title}</h2>${tabs}</div>
${data.unavailable !== undefined
    ? html`<p class="empty">Not available: ${data.unavailable}.</p>`
    : tab.people
    ? peopleTable(data)
    : data.rows.length === 0
    ? html`<p class="empty">No data for this period.</p>`
    : html`<table class="breakdown"><thead><tr><th scope="col">${tab.heading}</th><th scope="col">Visitors</th><th scope="col">Sessions</th></tr></thead><tbody>${rows}</tbody></table>`}
${data.unavailable !== undefined ? '' : html`<p class="panel-foot"><a href="${links.panelCsv(p.id, tab.id)}${hrefOf(links, view.state, '')}" download>Export ${tab.label} as CSV</a></p>`}
</section>`;
}

export function renderSitePage(view: SiteView, links: SiteLinks, viewer: LayoutInput['viewer']): Html {
  const state = view.state;
  const rangeText = view.range.from === view.range.to ? view.range.from : `${view.range.from} – ${view.range.to}`;
  const body = html`<div class="site-head">
  <h1>${view.name}</h1>
  <p class="current" aria-live="polite"><span class="dot" aria-hidden="true"></span><a id="current-visitors" data-src="${links.currentVisitors}" href="${links.currentVisitors}"><span class="n">…</span> current visitors</a></p>
</div>
<p class="range">${PERIOD_LABELS[state.period]}: <strong>${rangeText}</strong> <span class="tz">(${view.timeZone})</span>${state.comparison ? html` · compared with <strong>${view.previous.from} – ${view.previous.to}</strong>` : ''}</p>
${periodPicker(view, links)}
${chips(view, links)}
<section aria-label="Totals"><ul class="cards">${CARD_METRICS.map((m) => card(view, links, m))}</ul></section>
${chart(view, links)}
<div class="panels">
${PANELS.map((p) => view.panels.find((d) => d.panel.id === p.id)).filter((d): d is PanelData => d !== undefined).map((d) => panel(view, links, d))}
</div>
<p class="export-all"><a class="button" href="${links.zip}${hrefOf(links, state, '')}" download>Export this view (zip of CSVs)</a></p>`;
  return layout({
    title: view.name,
    viewer,
    body,
    scripts: [`${ASSET_PREFIX}/uplot.iife.min.js`, `${ASSET_PREFIX}/dashboard.js`],
  });
}
