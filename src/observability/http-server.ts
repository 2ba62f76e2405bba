/**
 * The worker's HTTP endpoint: `/healthz` (the process is alive and its loop runs), `/readyz`
 * (connected to Kafka, Redis and ClickHouse) — both answer a tri-state JSON body, 200 for ok
 * and degraded-but-alive where it applies, 503 otherwise — and `/metrics` for Prometheus.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { PortUnavailableError } from '../errors';
import { within } from '../preflight/deadline';

/** Longest /readyz takes to answer. */
export const READINESS_BOUND_MS = 900;

export type HealthStatus = 'ok' | 'degraded' | 'error';
export interface HealthReport {
  status: HealthStatus;
  checks: Record<string, boolean>;
}

export interface HealthSource {
  health(): HealthReport;
  readiness(): Promise<HealthReport>;
}

/**
 * Binds the endpoint's port before the command connects to anything: a port that cannot be bound
 * (another worker or collector on the machine) stops the command at once with one line, instead
 * of after it has joined the consumer group. Until `serve` is called, every path answers 503.
 */
export class HttpEndpoint {
  private handler: RequestListener = (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'error', checks: { started: false } }));
  };

  private constructor(readonly server: Server) {}

  /** `setting` names the variable the port came from, for the error line. */
  static async listen(port: number, setting = 'HTTP_PORT', host?: string): Promise<HttpEndpoint> {
    const server = createServer();
    const endpoint = new HttpEndpoint(server);
    server.on('request', (req, res) => endpoint.handler(req, res));
    await listenOn(server, port, setting, host);
    return endpoint;
  }

  serve(source: HealthSource, registry: Registry): void {
    this.handler = healthHandler(source, registry);
  }

  get port(): number {
    return boundPort(this.server);
  }

  close(): void {
    this.server.close();
  }
}

/** Listens, or rejects with `PortUnavailableError` naming the setting (EADDRINUSE, EACCES...). */
export function listenOn(server: Server, port: number, setting: string, host?: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(new PortUnavailableError(setting, port, err.code ?? err.message, err));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Can `port` be bound right now? Rejects like `listenOn` when not; the port is released again. */
export async function checkPortFree(port: number, setting: string, host?: string): Promise<void> {
  if (port === 0) return;
  const server = createServer();
  await listenOn(server, port, setting, host);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function healthHandler(source: HealthSource, registry: Registry): RequestListener {
  return (req, res) => {
    const send = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      const report = source.health();
      send(report.status === 'error' ? 503 : 200, JSON.stringify(report));
    } else if (path === '/readyz') {
      // A bound of its own, whatever the source does: /readyz answers within a second.
      within(READINESS_BOUND_MS, source.readiness()).then(
        (report) => send(report.status === 'ok' ? 200 : 503, JSON.stringify(report)),
        (err: unknown) => send(503, JSON.stringify({ status: 'error', error: String(err) })),
      );
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => send(200, text, registry.contentType),
        (err: unknown) => send(500, String(err), 'text/plain'),
      );
    } else {
      send(404, JSON.stringify({ error: 'not found' }));
    }
  };
}

export async function startHttpServer(port: number, source: HealthSource, registry: Registry): Promise<Server> {
  const endpoint = await HttpEndpoint.listen(port);
  endpoint.serve(source, registry);
  return endpoint.server;
}

export function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}
