/**
 * The dashboard's Prometheus metrics (prom-client), in one registry so tests can create their own.
 */
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class DashboardMetrics {
  readonly registry: Registry;
  /** Time to answer, by route pattern (not the URL: no site ids or tokens in labels) and status. */
  readonly requestSeconds: Histogram;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registry = new Registry();
    this.registry = registry;
    if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'sessionizer_dashboard_' });
    this.requestSeconds = new Histogram({
      name: 'sessionizer_dashboard_request_seconds',
      help: 'Time to answer a dashboard request, by route and status.',
      labelNames: ['route', 'status'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }
}
