/**
 * The collector's HTTP API on fastify: Segment's tracking API (`POST /v1/track|page|screen|
 * identify|group|alias|batch`), Plausible's Events API (`POST /api/event`) and the first-party
 * script (`GET /s.js`). Each request is given its site (by write key, or by Plausible domain),
 * rate limited per key and per client IP, split into messages, given a cookieless id when it has
 * none, mapped to events by the one Segment mapping, stamped with its site, enriched, and
 * answered only once Kafka has acknowledged its events.
 *
 * Answers on /v1 (Segment's shape): 200 `{"success": true}`; otherwise `{"success": false,
 * "message"}` with 400 (malformed JSON, a body that is not UTF-8, not a Segment message, or an
 * invalid event), 401 (missing or unknown write key), 413 (a message over the message limit, a
 * body over the batch limit), 415 (a content encoding other than gzip), 429 (rate limit;
 * Retry-After), 503 (Kafka unreachable, queue full, or shutting down; Retry-After). On
 * /api/event (Plausible's shape): 202 `ok`, also for what is dropped (an undeclared domain, a
 * bot), which then says so in `x-plausible-dropped`; errors as `{"errors": {"field": ["why"]}}`.
 *
 * Privacy: the client IP and the User-Agent are read from the request for the cookieless hash and
 * enrichment only; they are not put into events and never logged (fastify's own request logging
 * is off, and our log lines name no request fields).
 */
import { randomUUID } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { Logger } from 'pino';
import type { CollectConfig } from '../config';
import { segmentToEvent } from '../events/segment';
import { browserOf } from '../events/user-agent';
import { describeInvalidUtf8, isUtf8 } from '../events/utf8';
import { hintsFromContext, hintsFromHeaders } from './client-hints';
import { DeliveryUnavailableError, type Delivery, type OutgoingEvent } from './delivery';
import { applyEnrichment, enrichmentOf, type ClientInfo, type Enrichment } from './enrich';
import type { GeoLookup } from './geo';
import { CALL_TYPES, hasOwnId, splitBody, type CallType, type Message } from './messages';
import type { CollectMetrics } from './metrics';
import { ENGAGEMENT, parsePlausibleBody, plausibleToSegment, type PlausibleErrors } from './plausible';
import { browserScript } from './script';
import type { VisitorIds } from './visitor-ids';
import { siteOf, type Site } from './write-keys';

export interface CollectorAppDeps {
  config: CollectConfig;
  delivery: Delivery;
  /** Null when cookieless ids are off: requests without an id are then refused (400). */
  visitorIds: VisitorIds | null;
  geo: GeoLookup | null;
  metrics: CollectMetrics;
  log: Logger;
  /** `track` event names that are conversions (key events). */
  keyEvents?: readonly string[];
  /** Epoch ms now (receipt time); injected by tests. */
  now?: () => number;
}

declare module 'fastify' {
  interface FastifyRequest {
    site?: Site;
  }
}

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly reason: string,
    readonly retryAfter?: number,
    /** Plausible's error body names the field at fault; `request` when none does. */
    readonly fields?: PlausibleErrors,
  ) {
    super(message);
  }
}

/** What one message became: an event to produce, or nothing because a bot sent it. */
type Prepared = { kind: 'event'; event: OutgoingEvent } | { kind: 'bot' };

/** What every message of one request shares: read from the request once. */
interface RequestFacts {
  receivedAt: string;
  headerUa: string;
  headerHints: ReturnType<typeof hintsFromHeaders>;
  /** Enrichment per client (IP and User-Agent), made once per request. */
  enrichments: Map<string, Enrichment>;
}

export async function buildCollectorApp(deps: CollectorAppDeps): Promise<FastifyInstance> {
  const { config, metrics, log } = deps;
  const now = deps.now ?? Date.now;
  const keyEvents = new Set(deps.keyEvents ?? []);
  const app = Fastify({
    // No fastify logger at all: its request logs would carry the client's address.
    logger: false,
    bodyLimit: config.maxBatchBytes,
    // Only the configured proxies may say who the client is; otherwise the socket address.
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    return503OnClosing: true,
  });
  // Browser SDKs (analytics.js, RudderStack) post JSON from the site's origin with an
  // Authorization header: that needs a CORS preflight. Any origin may send, without
  // credentials (the collector sets and reads no cookie); the write key decides what is taken.
  await app.register(cors, {
    origin: '*',
    methods: ['GET', 'POST'],
    allowedHeaders: ['authorization', 'content-type', 'content-encoding'],
    exposedHeaders: ['retry-after', 'x-plausible-dropped'],
    maxAge: 86_400,
    credentials: false,
  });
  await app.register(rateLimit, { global: false });
  const perKey = config.rateLimit.perKey > 0
    ? app.createRateLimit({ max: config.rateLimit.perKey, timeWindow: config.rateLimit.windowMs, keyGenerator: (req) => `k:${req.site?.writeKey ?? ''}` })
    : null;
  const perIp = config.rateLimit.perIp > 0
    ? app.createRateLimit({ max: config.rateLimit.perIp, timeWindow: config.rateLimit.windowMs, keyGenerator: (req) => `i:${req.ip}` })
    : null;

  // Bodies are JSON whatever the content type says: a browser's sendBeacon sends text/plain
  // (a type that needs no CORS preflight), and so does Plausible's script. Gzip bodies are
  // inflated before parsing, and the size limits apply to the inflated bytes. Bytes that are
  // not UTF-8 are refused, never decoded: Node would put U+FFFD in their place and the event
  // would go on with its text silently changed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(new HttpError(400, `the body is ${describeInvalidUtf8(bytes)}`, 'malformed'), undefined);
      return;
    }
    try {
      done(null, JSON.parse(bytes.toString('utf8')));
    } catch {
      done(new HttpError(400, 'malformed JSON', 'malformed', undefined, { request: ['Unable to parse request body as json'] }), undefined);
    }
  });
  app.addHook('preParsing', async (request, _reply, payload) => {
    const encoding = String(request.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding === 'identity') return payload;
    if (encoding !== 'gzip') throw new HttpError(415, `content-encoding ${encoding} is not supported (gzip is)`, 'malformed');
    const inflated = Object.assign(createGunzip(), { receivedEncodedLength: 0 });
    // fastify checks Content-Length against the bytes received, which are the compressed ones.
    payload.on('data', (chunk: Buffer) => (inflated.receivedEncodedLength += chunk.length));
    payload.on('error', (err) => inflated.destroy(err));
    payload.pipe(inflated);
    return inflated;
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    let status = error instanceof HttpError ? error.statusCode : (error.statusCode ?? 500);
    let message = error.message;
    let reason = error instanceof HttpError ? error.reason : 'malformed';
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      reason = 'too_large';
      const batch = ['batch', 'import'].includes(routeOf(request));
      message = `the body is larger than ${batch ? config.maxBatchBytes : config.maxMessageBytes} bytes`;
    } else if (error.code === 'Z_DATA_ERROR' || error.code === 'Z_BUF_ERROR') {
      status = 400;
      message = 'the body is not valid gzip';
    } else if (status >= 500 && !(error instanceof HttpError)) {
      reason = 'internal';
      log.error({ err: { message: error.message, code: error.code } }, 'collect request failed');
      message = 'internal error';
    }
    metrics.rejections.inc({ reason });
    if (error instanceof HttpError && error.retryAfter !== undefined) void reply.header('retry-after', String(error.retryAfter));
    if (routeOf(request) === PLAUSIBLE_ROUTE) {
      const fields = error instanceof HttpError && error.fields ? error.fields : { request: [message] };
      return reply.code(status).send({ errors: fields });
    }
    return reply.code(status).send({ success: false, message });
  });

  // While closing, answers end their connection: a keep-alive socket of a request that was in
  // progress at close time would otherwise hold the server open until its idle timeout.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    metrics.requests.inc({ route: routeOf(request), status: String(reply.statusCode) });
  });

  const script = browserScript();
  app.get('/s.js', async (request, reply) => {
    const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    void reply
      .header('content-type', 'application/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .header('etag', script.etag)
      .header('vary', 'accept-encoding');
    if (request.headers['if-none-match'] === script.etag) return reply.code(304).send();
    if (gzip) void reply.header('content-encoding', 'gzip');
    return reply.send(gzip ? script.gzip : script.source);
  });

  const limit = async (request: FastifyRequest) => {
    for (const limiter of [perKey, perIp]) {
      if (!limiter) continue;
      const verdict = await limiter(request);
      if (!verdict.isAllowed && verdict.isExceeded) throw new HttpError(429, 'rate limit exceeded', 'rate_limited', Math.max(1, verdict.ttlInSeconds));
    }
  };

  const authenticate = async (request: FastifyRequest) => {
    const site = siteOf(config.writeKeys, request.headers.authorization, request.body);
    if (!site) throw new HttpError(401, 'missing or unknown write key', 'auth');
    request.site = site;
    await limit(request);
  };

  /**
   * One message of a request for `site`: its client (the request's, or the visitor a server
   * names in the context), enrichment (cached per request), a cookieless id when it has none,
   * the mapping, and the site stamped on the event.
   */
  const prepare = async (message: Message, index: number, site: Site, request: FastifyRequest, facts: RequestFacts): Promise<Prepared> => {
    const { headerUa, enrichments, receivedAt } = facts;
    const context = message.context && typeof message.context === 'object' ? (message.context as Message) : {};
    // A server speaking for a visitor (analytics-node, a store's POS) may name the visitor's IP
    // and User-Agent in the context, as Segment's spec allows; otherwise the request's own.
    const client: ClientInfo = {
      ip: typeof context.ip === 'string' && context.ip ? context.ip : request.ip,
      userAgent: typeof context.userAgent === 'string' && context.userAgent ? context.userAgent : visitorAgent(headerUa),
      hints: hintsFromContext(context) ?? facts.headerHints,
    };
    const cacheKey = `${client.ip}\n${client.userAgent}`;
    let enrichment = enrichments.get(cacheKey);
    if (!enrichment) {
      enrichment = enrichmentOf(client, deps.geo);
      enrichments.set(cacheKey, enrichment);
    }
    if (enrichment.isBot) return { kind: 'bot' };
    const input: Message = { ...message };
    if (!hasOwnId(input)) {
      if (!deps.visitorIds) throw new HttpError(400, `message ${index}: needs anonymousId or userId (cookieless ids are off)`, 'invalid');
      try {
        input.anonymousId = await deps.visitorIds.idFor(site.siteId, client.ip, client.userAgent || headerUa);
      } catch (err) {
        // Without Redis there is no day's salt, so no id: refuse rather than guess.
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cookieless id unavailable (Redis)');
        throw new HttpError(503, 'cannot make a visitor id now', 'unavailable', config.retryAfterSeconds);
      }
    }
    if (typeof input.messageId !== 'string' || input.messageId === '') input.messageId = `srv-${randomUUID()}`;
    // The raw IP and User-Agent stop here: the mapping reads `context.userAgent` for the
    // browser name only, and the event it returns has no field for either.
    const mapped = segmentToEvent(input, { keyEvents, receivedAt, parseBrowser: browserOf });
    if (!mapped.ok) throw new HttpError(400, `message ${index}: ${mapped.error.message}`, 'invalid', undefined, { [mapped.error.field || 'request']: [mapped.error.reason] });
    const event = mapped.event as unknown as Record<string, unknown>;
    // The site of the key (or domain), the same one the cookieless hash above used. Added after
    // the mapping, which knows nothing of write keys.
    event.site = site.siteId;
    applyEnrichment(event, enrichment);
    const key = String(event.anonymous_id || event.user_id || '');
    return { kind: 'event', event: { key, value: JSON.stringify(event) } };
  };

  /** Prepares every message (all or nothing) and delivers the events; resolves once Kafka acknowledged them. */
  const collect = async (items: ReadonlyArray<{ message: Message; site: Site }>, request: FastifyRequest): Promise<{ events: number; bots: number }> => {
    const facts: RequestFacts = {
      receivedAt: new Date(now()).toISOString(),
      headerUa: String(request.headers['user-agent'] ?? ''),
      headerHints: hintsFromHeaders(request.headers),
      enrichments: new Map(),
    };
    const outgoing: OutgoingEvent[] = [];
    const counted: Array<[string, string]> = [];
    for (let i = 0; i < items.length; i++) {
      const { message, site } = items[i] as { message: Message; site: Site };
      const type = String(message.type);
      let prepared: Prepared;
      try {
        prepared = await prepare(message, i, site, request, facts);
      } catch (err) {
        if (err instanceof HttpError && err.reason === 'invalid') metrics.events.inc({ type, outcome: 'invalid' }, items.length);
        throw err;
      }
      if (prepared.kind === 'bot') {
        metrics.bots.inc();
        counted.push([type, 'bot']);
        continue;
      }
      outgoing.push(prepared.event);
      counted.push([type, 'accepted']);
    }
    try {
      await deps.delivery.deliver(outgoing);
    } catch (err) {
      if (!(err instanceof DeliveryUnavailableError)) throw err;
      for (const [type, outcome] of counted) metrics.events.inc({ type, outcome: outcome === 'bot' ? 'bot' : 'refused' });
      throw new HttpError(503, err.message, 'unavailable', config.retryAfterSeconds);
    }
    for (const [type, outcome] of counted) metrics.events.inc({ type, outcome });
    return { events: outgoing.length, bots: counted.length - outgoing.length };
  };

  const handle = (route: CallType | 'batch') => async (request: FastifyRequest, reply: FastifyReply) => {
    const site = request.site as Site;
    // Content-Length is the compressed size for gzip bodies: measure those messages one by one.
    const encoded = request.headers['content-encoding'] !== undefined && request.headers['content-encoding'] !== 'identity';
    const declared = Number(request.headers['content-length']);
    const split = splitBody(route, request.body, config.maxMessageBytes, encoded || !Number.isFinite(declared) ? Infinity : declared);
    if (!split.ok) throw new HttpError(split.status, split.message, split.status === 413 ? 'too_large' : 'malformed');
    await collect(
      split.messages.map((message) => ({ message, site })),
      request,
    );
    return reply.code(200).send({ success: true });
  };

  /**
   * Plausible's Events API. The site is the declared site of each domain the event names; an
   * undeclared domain's event is dropped and the answer is still 202, as Plausible answers for a
   * site it does not know (the tracker scripts do not retry, and a 4xx would only fill the
   * browser console), with `x-plausible-dropped` and a body that says why.
   */
  const plausible = async (request: FastifyRequest, reply: FastifyReply) => {
    const parsed = parsePlausibleBody(request.body);
    if (!parsed.ok) {
      metrics.events.inc({ type: 'plausible', outcome: 'invalid' });
      const [field, reasons] = Object.entries(parsed.errors)[0] ?? ['request', ['invalid']];
      throw new HttpError(400, `${field}: ${reasons.join(', ')}`, 'invalid', undefined, parsed.errors);
    }
    const { request: event } = parsed;
    const sites = new Map<string, Site>();
    const undeclared: string[] = [];
    for (const domain of event.domains) {
      const siteId = config.plausibleDomains.get(domain);
      if (siteId === undefined) undeclared.push(domain);
      // Two domains of one site make one event, not two.
      else if (!sites.has(siteId)) sites.set(siteId, { writeKey: `plausible:${domain}`, siteId });
    }
    const type = event.name === ENGAGEMENT ? ENGAGEMENT : 'plausible';
    if (sites.size === 0) {
      metrics.rejections.inc({ reason: 'unknown_domain' });
      metrics.events.inc({ type, outcome: 'dropped' });
      return reply
        .code(202)
        .header('x-plausible-dropped', String(undeclared.length))
        .type('text/plain; charset=utf-8')
        .send(`dropped: the domain ${undeclared.join(', ')} is not declared in COLLECT_PLAUSIBLE_DOMAINS`);
    }
    request.site = sites.values().next().value as Site;
    await limit(request);
    // Engagement pings (time on page, scroll depth) are not events: counted, not sessionized.
    if (event.name === ENGAGEMENT) {
      metrics.events.inc({ type, outcome: 'ignored' });
      return reply.code(202).type('text/plain; charset=utf-8').send('ok');
    }
    const template = plausibleToSegment(event, new Date(now()).toISOString());
    const { bots } = await collect(
      [...sites.values()].map((site) => ({ message: { ...template, messageId: `p-${randomUUID()}` }, site })),
      request,
    );
    const dropped = undeclared.length + bots;
    if (dropped > 0) void reply.header('x-plausible-dropped', String(dropped));
    return reply.code(202).type('text/plain; charset=utf-8').send('ok');
  };

  for (const type of CALL_TYPES) {
    app.post(`/v1/${type}`, { bodyLimit: config.maxMessageBytes, preHandler: authenticate }, handle(type));
  }
  app.post('/v1/batch', { bodyLimit: config.maxBatchBytes, preHandler: authenticate }, handle('batch'));
  // Segment's SDKs also use the short aliases /v1/t, /v1/p, …; analytics-node uses /v1/batch.
  app.post('/v1/import', { bodyLimit: config.maxBatchBytes, preHandler: authenticate }, handle('batch'));
  app.post(`/${PLAUSIBLE_ROUTE}`, { bodyLimit: config.maxMessageBytes }, plausible);
  return app;
}

/**
 * The request's User-Agent when it is a browser's (every browser's starts with "Mozilla/"),
 * else "": a server-side SDK or a store's till (`analytics-node-next/…`, `curl/…`) is not the
 * visitor, so it is neither parsed for a device nor judged a bot — bot lists name every HTTP
 * library, and would drop all server-to-server traffic.
 */
export function visitorAgent(userAgent: string): string {
  return userAgent.startsWith('Mozilla/') ? userAgent : '';
}

/** Plausible's Events API route (without the leading slash: the `route` label of the metrics). */
const PLAUSIBLE_ROUTE = 'api/event';

function routeOf(request: FastifyRequest): string {
  const url = request.routeOptions?.url ?? '';
  if (url.startsWith('/v1/')) return url.slice(4);
  if (url === `/${PLAUSIBLE_ROUTE}`) return PLAUSIBLE_ROUTE;
  return url === '/s.js' ? 's.js' : 'other';
}
