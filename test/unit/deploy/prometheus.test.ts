/**
 * deploy/prometheus/alerts.yml and deploy/kubernetes/monitoring/: tested like the dashboards.
 * Every alert expression parses as PromQL (Prometheus' own grammar, @prometheus-io/lezer-promql),
 * uses only metrics the worker registers (histograms by their series) and groups only by labels
 * they have; the PrometheusRule carries exactly the same groups; the ServiceMonitor scrapes the
 * worker Service's named port on /metrics; compose's Prometheus loads the rules file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { parse, parseAllDocuments } from 'yaml';
import { CollectMetrics } from '../../../src/collect/metrics';
import { WorkerMetrics } from '../../../src/observability/metrics';
import { REPO } from './dockerfile-model';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const rules = parse(readFileSync(join(REPO, 'deploy', 'prometheus', 'alerts.yml'), 'utf8')) as Obj;
const monitoring = (file: string) => parseAllDocuments(readFileSync(join(REPO, 'deploy', 'kubernetes', 'monitoring', file), 'utf8')).map((d) => d.toJS() as Obj);
const alerts = (rules.groups as Obj[]).flatMap((g) => g.rules as Obj[]);

function syntaxErrors(expr: string): number {
  let errors = 0;
  parser.parse(expr).iterate({ enter: (node) => void (node.type.isError && (errors += 1)) });
  return errors;
}

describe('Prometheus alert rules', () => {
  let registered: Map<string, { type: string; labels: string[] }>;
  beforeAll(async () => {
    // The worker's metrics and the collector's: both are scraped by the same Prometheus.
    registered = new Map();
    for (const { registry } of [new WorkerMetrics({ defaultMetrics: true }), new CollectMetrics()]) {
      for (const m of await registry.getMetricsAsJSON()) {
        const metric = registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] } | undefined;
        registered.set(m.name, { type: String(m.type), labels: metric?.labelNames ?? [] });
      }
    }
  });

  it('the parser catches a broken expression (so the check below can fail)', () => {
    expect(syntaxErrors('sum(rate(sessionizer_events_consumed_total[5m])')).toBeGreaterThan(0);
    expect(syntaxErrors('sum(rate(sessionizer_events_consumed_total[5m]))')).toBe(0);
  });

  it('are unique, named, with a duration, a severity and a summary, and parse as PromQL', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(6);
    expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
    for (const alert of alerts) {
      expect(alert.alert).toMatch(/^Sessionizer[A-Za-z]+$/);
      expect(alert.for).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning', 'info']).toContain(alert.labels.severity);
      expect(alert.annotations.summary).toEqual(expect.any(String));
      expect({ alert: alert.alert, errors: syntaxErrors(String(alert.expr)) }).toEqual({ alert: alert.alert, errors: 0 });
    }
  });

  it('use only registered metrics and group only by labels they have', () => {
    for (const alert of alerts) {
      const expr = String(alert.expr);
      const names = [...expr.matchAll(/\b(sessionizer_[a-z0-9_]+)\b/g)].map(([, n]) => {
        const base = (n as string).replace(/_(bucket|sum|count)$/, '');
        return registered.get(base)?.type === 'histogram' ? base : (n as string);
      });
      for (const name of names) expect({ alert: alert.alert, name, registered: registered.has(name) }).toEqual({ alert: alert.alert, name, registered: true });
      for (const [, list] of expr.matchAll(/\bby \(([^)]*)\)/g)) {
        const allowed = new Set(['instance', 'job', 'pod', ...names.flatMap((n) => registered.get(n)?.labels ?? [])]);
        for (const label of (list as string).split(',').map((l) => l.trim())) expect({ alert: alert.alert, label, known: allowed.has(label) }).toEqual({ alert: alert.alert, label, known: true });
      }
    }
  });

  it('cover dead letters, late events, rebalances, lag, ClickHouse errors, stalled partitions, lost state and the collector', () => {
    const all = alerts.map((a) => String(a.expr)).join('\n');
    for (const metric of [
      'events_invalid_total',
      'events_late_total',
      'rebalances_total',
      'consumer_lag_messages',
      'clickhouse_errors_total',
      'partition_stalled_seconds',
      'state_rewinds_total',
      'collect_events_total',
    ]) {
      expect(all).toContain(`sessionizer_${metric}`);
    }
  });

  it('are loaded by the compose Prometheus', () => {
    const compose = parse(readFileSync(join(REPO, 'deploy', 'compose.yaml'), 'utf8')) as Obj;
    const config = parse(String(compose.configs.prometheus.content)) as Obj;
    expect(config.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const mount = (compose.services.prometheus.configs as Obj[]).find((c) => c.target === '/etc/prometheus/alerts.yml');
    expect(compose.configs[mount?.source]?.file).toBe('./prometheus/alerts.yml');
  });
});

describe('Prometheus Operator resources', () => {
  const [rule] = monitoring('prometheusrule.yaml');
  const [serviceMonitor] = monitoring('servicemonitor.yaml');
  const kustomization = monitoring('kustomization.yaml')[0] as Obj;
  const services = ['service.yaml', 'collector-service.yaml'].map((file) => parse(readFileSync(join(REPO, 'deploy', 'kubernetes', file), 'utf8')) as Obj);

  it('the PrometheusRule holds exactly the groups of alerts.yml', () => {
    expect(rule).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule' });
    expect(rule?.spec).toEqual(rules);
  });

  it.each([0, 1])('the ServiceMonitor selects the worker and the collector Service (%i) and scrapes their named port on /metrics', (i) => {
    const service = services[i] as Obj;
    expect(serviceMonitor).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor' });
    const serviceLabels: Record<string, string> = { ...(service.metadata.labels as Record<string, string>), 'app.kubernetes.io/name': 'sessionizer' }; // the kustomization adds the name label
    for (const [k, v] of Object.entries(serviceMonitor?.spec.selector.matchLabels as Record<string, string>)) expect({ k, v: serviceLabels[k] }).toEqual({ k, v });
    for (const { key, operator, values } of serviceMonitor?.spec.selector.matchExpressions as Obj[]) {
      expect(operator).toBe('In');
      expect(values).toContain(serviceLabels[key]);
    }
    const ports = (service.spec.ports as Obj[]).map((p) => p.name);
    for (const endpoint of serviceMonitor?.spec.endpoints as Obj[]) {
      expect(ports).toContain(endpoint.port);
      expect(endpoint.path).toBe('/metrics');
    }
    expect([...(kustomization.resources as string[])].sort()).toEqual(['prometheusrule.yaml', 'servicemonitor.yaml']);
  });
});
