/**
 * The dashboard's pages on a Fastify app:
 *   GET /                          the viewer's sites (a shared link's viewer goes to its site)
 *   GET /:site                     a site's page (state in the query string, see view-state.ts)
 *   GET /:site/export.zip          the view as a zip of CSVs
 *   GET /:site/export/:panel/:tab.csv   one panel tab as CSV
 *   GET /:site/current-visitors    {"visitors": n}, polled every 30 s by the page
 *   GET /share/:site?auth=TOKEN    a shared link: the site's page, read-only
 *   GET /assets/:file              CSS and scripts
 * The server decides who the viewer is (request.viewer); a site the viewer may not see answers
 * 404 exactly as a site that does not exist. Every figure comes from the Stats API's query
 * builder (parseStatsQuery + runStatsQuery), so pages, API and exports agree.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DashboardDeps } from '../server';
import { currentVisitors } from '../stats/current-visitors';
import { parseStatsQuery, runStatsQuery, type StatsDeps } from '../stats/query';
import { loadAssets } from './assets';
import { CARD_METRIC_NAMES, DEFAULT_METRIC, findTab } from './catalog';
import { exportName, panelCsv, viewZip } from './export';
import type { LayoutInput } from './layout';
import { renderSitePage, type SiteLinks } from './render-site';
import { renderSitesPage } from './render-sites';
import { lastDaySessions, loadSiteView, type SiteViewInput } from './site-view';
import type { StatsSource } from './stats-source';
import { parseViewState } from './view-state';
import { html, type Html } from './html';
import { layout } from './layout';

export interface Viewer {
  kind: 'account' | 'share' | 'api';
  email?: string;
  sites: string[];
  readOnly: boolean;
}

export interface PagesDeps {
  stats: StatsSource;
  /** A site's display name (its id by default). */
  nameOf?: (site: string) => string;
  /** The site's IANA time zone (its days and hours are shown in it). */
  timeZoneOf: (site: string) => string;
  /** Distinct visitors with activity in the last 5 minutes. */
  currentVisitors: (site: string) => Promise<number>;
  now?: () => Date;
}

function viewerOf(request: FastifyRequest): Viewer | null {
  return (request as FastifyRequest & { viewer?: Viewer | null }).viewer ?? null;
}

function layoutViewer(viewer: Viewer): LayoutInput['viewer'] {
  return { kind: viewer.kind, email: viewer.email, readOnly: viewer.readOnly };
}

/** The raw query string of a request, "" without one. */
function searchOf(request: FastifyRequest): string {
  const q = request.url.indexOf('?');
  return q < 0 ? '' : request.url.slice(q + 1);
}

/** A shared link's token travels in `auth` (as Plausible's do); every link of its page keeps it. */
function keepOf(request: FastifyRequest): string | undefined {
  const auth = new URLSearchParams(searchOf(request)).get('auth');
  return auth === null ? undefined : `auth=${encodeURIComponent(auth)}`;
}

/**
 * Pages load scripts, styles and the icon from this origin only, run no inline script, and may
 * not be framed. Inline style attributes stay allowed: the breakdown bars' widths are set that
 * way (all numbers the server formats).
 */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cache-control': 'private, no-store',
};

function sendPage(reply: FastifyReply, page: Html, status = 200): FastifyReply {
  return reply.code(status).headers(PAGE_SECURITY_HEADERS).type('text/html; charset=utf-8').send(page.text);
}

function notFound(reply: FastifyReply, viewer: Viewer | null): FastifyReply {
  const body = html`<h1>Not found</h1><p>There is no such page${viewer?.kind === 'account' ? html`. <a href="/">Back to your sites</a>` : ''}.</p>`;
  return sendPage(reply, layout({ title: 'Not found', viewer: viewer ? layoutViewer(viewer) : null, body }), 404);
}

/** The pages over the dashboard's ClickHouse, through the Stats API's own functions. */
export function pagesDepsOf(deps: DashboardDeps): PagesDeps {
  const stats: StatsDeps = { clickhouse: deps.clickhouse, database: deps.database, sites: deps.access.sites, now: deps.now };
  const siteConfig = (site: string) => deps.access.sites.find((s) => s.id === site);
  return {
    stats: async (query) => runStatsQuery(stats, parseStatsQuery(query)),
    nameOf: (site) => siteConfig(site)?.name ?? site,
    timeZoneOf: (site) => siteConfig(site)?.timezone ?? 'UTC',
    currentVisitors: (site) => currentVisitors(stats, site),
    now: deps.now ? () => new Date((deps.now as () => number)()) : undefined,
  };
}

export async function registerPages(app: FastifyInstance, deps: DashboardDeps): Promise<void> {
  registerPagesWith(app, pagesDepsOf(deps));
}

export function registerPagesWith(app: FastifyInstance, deps: PagesDeps): void {
  const now = deps.now ?? (() => new Date());
  const assets = loadAssets();

  // Assets are public: the login page may use them too.
  app.get<{ Params: { file: string } }>('/assets/:file', { config: { public: true } }, async (request, reply) => {
    const found = assets.get(request.params.file);
    if (!found) return reply.code(404).send();
    reply.header('etag', found.etag).header('cache-control', 'public, max-age=3600');
    if (request.headers['if-none-match'] === found.etag) return reply.code(304).send();
    return reply.type(found.type).send(found.body);
  });

  // Browsers ask for /favicon.ico whatever the page says.
  app.get('/favicon.ico', { config: { public: true } }, async (_request, reply) => {
    const icon = assets.get('favicon.svg') as NonNullable<ReturnType<typeof assets.get>>;
    return reply.type(icon.type).header('cache-control', 'public, max-age=86400').send(icon.body);
  });

  /** The viewer and site of a site route, or undefined after answering (login or 404). */
  const siteOf = (request: FastifyRequest<{ Params: { site: string } }>, reply: FastifyReply): { viewer: Viewer; site: string } | undefined => {
    const viewer = viewerOf(request);
    if (!viewer) {
      void reply.redirect(`/login?next=${encodeURIComponent(request.url)}`);
      return undefined;
    }
    if (!viewer.sites.includes(request.params.site)) {
      void notFound(reply, viewer);
      return undefined;
    }
    return { viewer, site: request.params.site };
  };

  const inputOf = (request: FastifyRequest, site: string): SiteViewInput => ({
    site,
    name: deps.nameOf?.(site),
    timeZone: deps.timeZoneOf(site),
    state: parseViewState(searchOf(request), CARD_METRIC_NAMES, DEFAULT_METRIC),
    now: now(),
    stats: deps.stats,
  });

  const linksOf = (request: FastifyRequest, site: string): SiteLinks => {
    const page = `/${encodeURIComponent(site)}`;
    return {
      page,
      keep: keepOf(request),
      panelCsv: (panel, tab) => `${page}/export/${panel}/${tab}.csv`,
      zip: `${page}/export.zip`,
      currentVisitors: `${page}/current-visitors${keepOf(request) ? `?${keepOf(request)}` : ''}`,
    };
  };

  app.get('/', async (request, reply) => {
    const viewer = viewerOf(request);
    if (!viewer) return reply.redirect('/login');
    if (viewer.kind === 'share' && viewer.sites.length === 1) {
      const keep = keepOf(request);
      return reply.redirect(`/${encodeURIComponent(viewer.sites[0] as string)}${keep ? `?${keep}` : ''}`);
    }
    const at = now();
    const sites = await Promise.all(viewer.sites.map(async (site) => {
      const day = await lastDaySessions(deps.stats, site, deps.timeZoneOf(site), at);
      return { site, name: deps.nameOf?.(site) ?? site, href: `/${encodeURIComponent(site)}`, sessions24h: day.total, hourly: day.hourly };
    }));
    return sendPage(reply, renderSitesPage(sites, layoutViewer(viewer)));
  });

  app.get<{ Params: { site: string } }>('/:site', async (request, reply) => {
    const found = siteOf(request, reply);
    if (!found) return reply;
    const view = await loadSiteView(inputOf(request, found.site));
    return sendPage(reply, renderSitePage(view, linksOf(request, found.site), layoutViewer(found.viewer)));
  });

  // Plausible's shared-link address; the token stays in every link of the page.
  app.get<{ Params: { site: string } }>('/share/:site', async (request, reply) => {
    const search = searchOf(request);
    return reply.redirect(`/${encodeURIComponent(request.params.site)}${search ? `?${search}` : ''}`);
  });

  app.get<{ Params: { site: string } }>('/:site/current-visitors', async (request, reply) => {
    const found = siteOf(request, reply);
    if (!found) return reply;
    reply.header('cache-control', 'no-store');
    return { visitors: await deps.currentVisitors(found.site) };
  });

  app.get<{ Params: { site: string } }>('/:site/export.zip', async (request, reply) => {
    const found = siteOf(request, reply);
    if (!found) return reply;
    const input = inputOf(request, found.site);
    const zip = await viewZip(input);
    return reply
      .type('application/zip')
      .header('content-disposition', `attachment; filename="${exportName(input, 'zip')}"`)
      .send(Buffer.from(zip));
  });

  app.get<{ Params: { site: string; panel: string; tab: string } }>('/:site/export/:panel/:tab', async (request, reply) => {
    const found = siteOf(request, reply);
    if (!found) return reply;
    const tab = request.params.tab.endsWith('.csv') ? findTab(request.params.panel, request.params.tab.slice(0, -4)) : undefined;
    if (!tab) return notFound(reply, found.viewer);
    const input = inputOf(request, found.site);
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${exportName(input, 'csv', tab.file.replace(/\.csv$/, ''))}"`)
      .send(await panelCsv(input, tab));
  });
}
