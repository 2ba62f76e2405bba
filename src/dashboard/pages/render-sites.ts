/** The list of a viewer's sites: each with its sessions of the last 24 hours and a sparkline. */
import { formatMetric } from './format';
import { html, type Html } from './html';
import { layout, type LayoutInput } from './layout';

export interface SiteSummary {
  site: string;
  name: string;
  href: string;
  sessions24h: number;
  hourly: number[];
}

/** A small inline SVG line of `values` (drawn server-side: no script needed). */
export function sparkline(values: readonly number[], width = 120, height = 32): Html {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`).join(' ');
  const area = `0,${height} ${points} ${width},${height}`;
  return html`<svg class="spark" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" preserveAspectRatio="none" aria-hidden="true" focusable="false">
<polygon points="${area}" class="spark-area"/><polyline points="${points}" class="spark-line"/></svg>`;
}

export function renderSitesPage(sites: readonly SiteSummary[], viewer: LayoutInput['viewer']): Html {
  const items = sites.map((s) => html`<li><a class="site-card" href="${s.href}" data-site="${s.site}" data-sessions="${s.sessions24h}">
<span class="site-name">${s.name}</span>
${sparkline(s.hourly)}
<span class="site-figure"><strong>${formatMetric(s.sessions24h, 'count')}</strong> sessions in the last 24 hours</span>
</a></li>`);
  const body = html`<h1>My sites</h1>
${sites.length === 0 ? html`<p class="empty">This account may see no site yet.</p>` : html`<ul class="sites">${items}</ul>`}`;
  return layout({ title: 'Sites', viewer, body });
}
