/**
 * The collector's Prometheus metrics (prom-client), in one registry so tests can create their own.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class CollectMetrics {
  readonly registry: Registry;
  /** HTTP requests by route and status code. */
  readonly requests: Counter<'route' | 'status'>;
  /** Events by Segment call type and outcome: accepted, invalid, bot, refused (not delivered). */
  readonly events: Counter<'type' | 'outcome'>;
  readonly bots: Counter;
  /** Refused requests by reason: auth, too_large, malformed, invalid, rate_limited, unavailable. */
  readonly rejections: Counter<'reason'>;
  readonly produceSeconds: Histogram;
  readonly queueDepth: Gauge;

  constructor(options: { defaultMetrics?: boolean; queueDepth?: () => number } = {}) {
    const registry = new Registry();
    this.registry = registry;
    if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'sessionizer_collect_' });
    this.requests = new Counter({ name: 'sessionizer_collect_requests_total', help: 'HTTP requests by route and status.', labelNames: ['route', 'status'], registers: [registry] });
    this.events = new Counter({
      name: 'sessionizer_collect_events_total',
      help: 'Events received, by Segment type and outcome (accepted, invalid, bot, refused).',
      labelNames: ['type', 'outcome'],
      registers: [registry],
    });
    this.bots = new Counter({ name: 'sessionizer_collect_bot_events_total', help: 'Events from known bots (answered, not sessionized).', registers: [registry] });
    this.rejections = new Counter({ name: 'sessionizer_collect_rejections_total', help: 'Requests refused, by reason.', labelNames: ['reason'], registers: [registry] });
    this.produceSeconds = new Histogram({
      name: 'sessionizer_collect_produce_duration_seconds',
      help: 'Time of one produce request to Kafka (until acks=all).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    });
    const depth = options.queueDepth;
    this.queueDepth = new Gauge({
      name: 'sessionizer_collect_queue_events',
      help: 'Events waiting for Kafka (queued and in flight).',
      registers: [registry],
      collect() {
        if (depth) this.set(depth());
      },
    });
  }
}
