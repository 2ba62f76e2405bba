/**
 * The dashboard's pages. This first version serves `/` only: the list of the viewer's sites.
 * (The full pages, with the chart, panels and filters, replace this file.)
 */
import type { FastifyInstance } from 'fastify';
import { escapeHtml } from '../html';
import type { DashboardDeps } from '../server';
import { requireSite } from '../viewer';

export async function registerPages(app: FastifyInstance, deps: DashboardDeps): Promise<void> {
  app.get('/', async (request, reply) => {
    const visible = new Set(request.viewer?.sites ?? []);
    const sites = deps.access.sites.filter((s) => visible.has(s.id));
    const items = sites.map((s) => `<li>${escapeHtml(s.name)} <small>(${escapeHtml(s.id)}, ${escapeHtml(s.timezone)})</small></li>`).join('\n');
    return reply.type('text/html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sites · sessionizer</title></head>
<body><h1>Your sites</h1>
<ul>
${items}
</ul>
${request.viewer?.kind === 'account' ? '<form method="post" action="/logout"><button type="submit">Log out</button></form>' : ''}
</body></html>`);
  });

  // A shared link's page: its one site (a site the viewer may not see is not found).
  app.get('/share/:site', async (request, reply) => {
    const { site } = request.params as { site: string };
    requireSite(request.viewer, site);
    const config = deps.access.sites.find((s) => s.id === site);
    return reply.type('text/html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(config?.name ?? site)} · sessionizer</title></head>
<body><h1>${escapeHtml(config?.name ?? site)}</h1></body></html>`);
  });
}
