/**
 * The worker's HTTP endpoint: `/healthz` (the process is alive and its loop runs), `/readyz`
 * (connected to Kafka, Redis and ClickHouse) — both answer a tri-state JSON body, 200 for ok
 * and degraded-but-alive where it applies, 503 otherwise — and `/metrics` for Prometheus.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
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

export async function startHttpServer(port: number, source: HealthSource, registry: Registry): Promise<Server> {
  const server = createServer((req, res) => {
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
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, resolve);
  });
  return server;
}

export function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}
