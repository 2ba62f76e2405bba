/**
 * The dashboard's HTTP app (fastify): login and logout, the viewer of every request, the Stats
 * API, and the pages (src/dashboard/pages/). No state of its own: the login cookie is a signed,
 * self-contained token, so any number of replicas can serve behind a balancer.
 *
 * Every route needs a viewer unless its route config says `public: true`; without one, API
 * routes answer 401 and pages redirect to /login. A site the viewer may not see answers exactly
 * as a site that does not exist (SiteNotFoundError → 404).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { InvalidStatsQueryError, SiteNotFoundError } from '../errors';
import type { DashboardAccess } from './config';
import { escapeHtml } from './html';
import type { DashboardMetrics } from './metrics';
import { registerPages } from './pages';
import { currentVisitors } from './stats/current-visitors';
import { statsToCsv } from './stats/csv';
import { parseStatsQuery, runStatsQuery, type StatsDeps } from './stats/query';
import { requireSite, ViewerResolver, type Viewer } from './viewer';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking; null for nobody (only public routes see that). */
    viewer: Viewer | null;
  }
  interface FastifyContextConfig {
    /** Served without a viewer (login, logout, health of the app itself). */
    public?: boolean;
  }
}

export const SESSION_COOKIE = 'sz_session';

export interface DashboardDeps {
  clickhouse: ClickHouseClient;
  database: string;
  access: DashboardAccess;
  /** Signs the login cookies (DASHBOARD_SESSION_SECRET). */
  sessionSecret: string;
  log?: Logger;
  /** Clock, ms; Date.now by default. */
  now?: () => number;
  /** How long a login lasts. Default 7 days. */
  sessionTtlMs?: number;
  /** Login attempts per client address and window. Default 10 a minute. */
  loginRateLimit?: { max: number; windowMs: number };
  metrics?: DashboardMetrics;
  /** Trust X-Forwarded-* from these proxies (fastify's trustProxy); default none. */
  trustProxy?: boolean | string | string[];
}

/** What the pages get to query with: the Stats API's own dependencies. */
export function statsDepsOf(deps: DashboardDeps): StatsDeps {
  return { clickhouse: deps.clickhouse, database: deps.database, sites: deps.access.sites, now: deps.now };
}

export { requireSite } from './viewer';

const isApi = (url: string) => url.startsWith('/api/');

/** A URL fit to log: the shared-link token taken out of the query string. */
export function loggableUrl(url: string): string {
  return url.replace(/([?&]auth=)[^&#]*/g, '$1[redacted]');
}

export async function buildDashboardApp(deps: DashboardDeps): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now;
  const log = deps.log;
  const resolver = new ViewerResolver(deps.access, deps.sessionSecret, deps.sessionTtlMs ?? 7 * 86_400_000);
  const app = Fastify({
    // No fastify logger: requests are logged below through our logger (its scrubber takes
    // secrets out), with the shared-link token removed from the URL and no headers (cookies,
    // Authorization).
    logger: false,
    trustProxy: deps.trustProxy ?? false,
    bodyLimit: 256 * 1024,
  });
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody);
  await app.register(fastifyRateLimit, { global: false });
  app.decorateRequest('viewer', null);

  app.addHook('onRequest', async (request, reply) => {
    request.viewer = await viewerOf(request, resolver, now());
    if (request.routeOptions.config?.public || request.viewer) return;
    if (isApi(request.url)) {
      return reply.code(401).send({ error: 'Missing or invalid API key: send Authorization: Bearer KEY' });
    }
    return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics?.requestSeconds.observe({ route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    log?.debug({ method: request.method, url: loggableUrl(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    if (err instanceof InvalidStatsQueryError) return reply.code(400).send({ error: err.message });
    if (err instanceof SiteNotFoundError) {
      return isApi(request.url) ? reply.code(404).send({ error: err.message }) : reply.code(404).type('text/html').send(notFoundPage());
    }
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    log?.error({ err, url: loggableUrl(request.url) }, 'request failed');
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) =>
    isApi(request.url) ? reply.code(404).send({ error: 'not found' }) : reply.code(404).type('text/html').send(notFoundPage()),
  );

  registerAuthRoutes(app, resolver, deps, now, log);
  registerApiRoutes(app, statsDepsOf(deps));
  await registerPages(app, deps);
  return app;
}

async function viewerOf(request: FastifyRequest, resolver: ViewerResolver, now: number): Promise<Viewer | null> {
  const authorization = request.headers.authorization;
  if (authorization && isApi(request.url)) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match ? resolver.apiKey(match[1] as string) : null;
  }
  const query = request.query as Record<string, unknown> | undefined;
  // A shared link's token: on /share/<site> and on the API calls its page makes.
  const token = typeof query?.auth === 'string' ? query.auth : undefined;
  if (token) return resolver.sharedLink(token);
  const cookie = request.cookies[SESSION_COOKIE];
  return cookie ? resolver.session(cookie, now) : null;
}

function registerAuthRoutes(app: FastifyInstance, resolver: ViewerResolver, deps: DashboardDeps, now: () => number, log: Logger | undefined): void {
  const limit = deps.loginRateLimit ?? { max: 10, windowMs: 60_000 };
  app.get('/login', { config: { public: true } }, async (request, reply) => {
    const next = safeNext((request.query as Record<string, unknown>).next);
    return reply.type('text/html').send(loginPage(next, ''));
  });
  app.post(
    '/login',
    { config: { public: true, rateLimit: { max: limit.max, timeWindow: limit.windowMs } } },
    async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const email = typeof body.email === 'string' ? body.email : '';
      const password = typeof body.password === 'string' ? body.password : '';
      const next = safeNext(body.next);
      const session = email && password ? await resolver.login(email, password, now()) : null;
      if (!session) {
        log?.info({ email: email.slice(0, 200) }, 'login refused');
        return reply.code(401).type('text/html').send(loginPage(next, 'Wrong e-mail address or password.'));
      }
      reply.setCookie(SESSION_COOKIE, session.token, {
        path: '/',
        httpOnly: true,
        sameSite: 'lax',
        secure: request.protocol === 'https',
        maxAge: session.maxAgeSeconds,
      });
      return reply.redirect(next, 303);
    },
  );
  const logout = async (_request: FastifyRequest, reply: FastifyReply) => {
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/login', 303);
  };
  app.post('/logout', { config: { public: true } }, logout);
  app.get('/logout', { config: { public: true } }, logout);
}

function registerApiRoutes(app: FastifyInstance, stats: StatsDeps): void {
  // JSON by default; `Accept: text/csv` gives the same rows as CSV (dimensions, then metrics).
  app.post('/api/v2/query', async (request, reply) => {
    const query = parseStatsQuery(request.body);
    requireSite(request.viewer, query.site_id);
    const answer = await runStatsQuery(stats, query);
    if (/\btext\/csv\b/.test(request.headers.accept ?? '')) return reply.type('text/csv; charset=utf-8').send(statsToCsv(answer));
    return answer;
  });
  // Plausible's realtime endpoint: the number of visitors active in the last 5 minutes.
  app.get('/api/v1/stats/realtime/visitors', async (request, reply) => {
    const site = (request.query as Record<string, unknown>).site_id;
    if (typeof site !== 'string' || site === '') throw new InvalidStatsQueryError('site_id', 'Missing site_id');
    requireSite(request.viewer, site);
    const count = await currentVisitors(stats, site);
    return reply.type('application/json').send(String(count));
  });
}

/** A redirect target after login: a local path only (never another host). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/';
}

function loginPage(next: string, message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Log in · sessionizer</title></head>
<body>
<main>
<h1>Log in</h1>
${message ? `<p role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/login">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<p><label>E-mail <input type="email" name="email" autocomplete="username" required autofocus></label></p>
<p><label>Password <input type="password" name="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Log in</button></p>
</form>
</main>
</body></html>`;
}

function notFoundPage(): string {
  return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found · sessionizer</title></head><body><h1>Not found</h1><p><a href="/">Your sites</a></p></body></html>';
}
