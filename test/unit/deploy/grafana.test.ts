/**
 * deploy/grafana: the worker dashboard queries only metrics the worker registers (with labels
 * they have) and shows every one of them; the roll-up dashboard's SQL runs against the real
 * schema — schemas/clickhouse applied to chdb, the ClickHouse engine in-process — over a few
 * sessions, with the Grafana macros filled in.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Session } from 'chdb';
import { migrate } from '../../../src/clickhouse/migrations';
import { chdbClient } from '../../support/chdb-client';
import { WorkerMetrics } from '../../../src/observability/metrics';
import { REPO } from './dockerfile-model';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const DIR = join(REPO, 'deploy', 'grafana');
const DASHBOARDS = Object.fromEntries(readdirSync(DIR).filter((f) => f.endsWith('.json')).map((f) => [f, JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Obj]));
const worker = DASHBOARDS['sessionizer-worker.json'] as Obj;
const rollups = DASHBOARDS['sessionizer-sessions.json'] as Obj;
const targets = (dashboard: Obj): Obj[] => (dashboard.panels as Obj[]).flatMap((p) => (p.targets ?? []) as Obj[]);
/** Panels with queries (a row only titles the panels below it). */
const queryPanels = (dashboard: Obj): Obj[] => (dashboard.panels as Obj[]).filter((p) => p.type !== 'row');

describe('Grafana dashboards', () => {
  it('are the worker and roll-up dashboards, with unique uids, panel ids and a 24-column grid', () => {
    expect(Object.keys(DASHBOARDS).sort()).toEqual(['sessionizer-sessions.json', 'sessionizer-worker.json']);
    expect(new Set(Object.values(DASHBOARDS).map((d) => d.uid)).size).toBe(2);
    for (const dashboard of Object.values(DASHBOARDS)) {
      const panels = dashboard.panels as Obj[];
      expect(panels.length).toBeGreaterThan(4);
      expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
      for (const p of panels) {
        expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
        expect(p.title).toEqual(expect.any(String));
        if (p.type === 'row') expect({ title: p.title, panels: p.panels, collapsed: p.collapsed }).toEqual({ title: p.title, panels: [], collapsed: false });
        else expect(p.targets.length).toBeGreaterThan(0);
      }
    }
  });

  describe('worker dashboard (Prometheus)', () => {
    let registered: Map<string, { type: string; labels: string[] }>;
    let ours: string[];

    beforeAll(async () => {
      const metrics = new WorkerMetrics({ defaultMetrics: true });
      registered = new Map(
        (await metrics.registry.getMetricsAsJSON()).map((m) => {
          const metric = metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] } | undefined;
          return [m.name, { type: String(m.type), labels: metric?.labelNames ?? [] }] as const;
        }),
      );
      const plain = await new WorkerMetrics().registry.getMetricsAsJSON();
      ours = plain.map((m) => m.name);
    });

    /** Metric names in a PromQL expression, with a histogram's _bucket/_sum/_count suffix removed. */
    function metricsIn(expr: string): string[] {
      return [...expr.matchAll(/\b(sessionizer_[a-z0-9_]+)\b/g)].map(([, name]) => {
        const base = (name as string).replace(/_(bucket|sum|count)$/, '');
        return registered.get(base)?.type === 'histogram' ? base : (name as string);
      });
    }

    it('queries only registered metrics, _bucket only of histograms, grouping by labels they have', () => {
      for (const target of targets(worker)) {
        const expr = String(target.expr);
        expect(target.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
        // Every series is filtered by the instance variable (multi-select, "All" = .*).
        for (const [, name, selector] of expr.matchAll(/\b(sessionizer_[a-z0-9_]+)(\{[^}]*\})?/g)) {
          expect({ expr, name, selector }).toEqual({ expr, name, selector: expect.stringContaining('instance=~"$instance"') });
        }
        const names = metricsIn(expr);
        expect({ expr, names: names.length > 0 }).toEqual({ expr, names: true });
        for (const name of names) expect({ expr, name, registered: registered.has(name) }).toEqual({ expr, name, registered: true });
        for (const [, bucket] of expr.matchAll(/\b(sessionizer_[a-z0-9_]+)_bucket\b/g)) expect(registered.get(bucket as string)?.type).toBe('histogram');
        for (const [, list] of expr.matchAll(/\bby \(([^)]*)\)/g)) {
          const allowed = new Set(['le', 'instance', 'job', 'pod', ...names.flatMap((n) => registered.get(n)?.labels ?? [])]);
          for (const label of (list as string).split(',').map((l) => l.trim())) expect({ expr, label, known: allowed.has(label) }).toEqual({ expr, label, known: true });
        }
        for (const [, legendLabel] of String(target.legendFormat ?? '').matchAll(/\{\{(\w+)\}\}/g)) {
          const grouped = [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap(([, list]) => (list as string).split(',').map((l) => l.trim()));
          const available = grouped.length > 0 ? grouped : ['instance', 'job', ...names.flatMap((n) => registered.get(n)?.labels ?? [])];
          expect({ expr, legendLabel, available: available.includes(legendLabel as string) }).toEqual({ expr, legendLabel, available: true });
        }
      }
    });

    it('has datasource and instance variables, the instance list drawn from the chosen datasource', () => {
      const variables = Object.fromEntries((worker.templating.list as Obj[]).map((v) => [v.name, v]));
      expect(variables.datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
      expect(variables.instance).toMatchObject({ type: 'query', includeAll: true, multi: true, allValue: '.*', datasource: { uid: '${datasource}' } });
      expect(metricsIn(String(variables.instance.query.query))).toEqual(['sessionizer_events_consumed_total']);
    });

    it('has dead-letter, late-event and rebalance panels', () => {
      const byTitle = new Map((worker.panels as Obj[]).map((p) => [p.title as string, ((p.targets ?? []) as Obj[]).map((t) => String(t.expr)).join(' ')]));
      expect(byTitle.get('Dead letters by reason')).toMatch(/sessionizer_events_invalid_total.*by \(reason\)|by \(reason\).*sessionizer_events_invalid_total/);
      expect(byTitle.get('Late events')).toContain('sessionizer_events_late_total');
      expect(byTitle.get('Rebalances and partitions')).toContain('sessionizer_rebalances_total');
    });

    it('shows every metric of src/observability/metrics.ts', () => {
      const shown = new Set(targets(worker).flatMap((t) => metricsIn(String(t.expr))));
      expect(ours.filter((name) => !shown.has(name))).toEqual([]);
    });
  });

  describe('roll-up dashboard (ClickHouse)', () => {
    let session: Session;
    const FROM = '2024-05-01';
    const TO = '2024-05-31';
    const SITE = 'shop';

    /** The grafana-clickhouse-datasource macros these queries use. */
    const expand = (sql: string) =>
      sql
        .replace(/\$__dateFilter\((\w+)\)/g, `$1 >= toDate('${FROM}') AND $1 <= toDate('${TO}')`)
        .replace(/\$__fromTime/g, `toDateTime('${FROM} 00:00:00')`)
        .replace(/\$__toTime/g, `toDateTime('${TO} 23:59:59')`)
        // Grafana's sqlstring format of the site variable: a quoted SQL string.
        .replace(/\$\{site:sqlstring\}/g, `'${SITE}'`);

    beforeAll(async () => {
      session = new Session();
      // The schema as `migrate` makes it (015 rebuilds tables, so the files cannot just be run in order).
      await migrate(chdbClient(session), { database: 'default' });
      const row = (id: string, user: string, day: string, channel: string, source: string, sign: number, engaged: number, site = SITE) =>
        `('${site}', '${id}', '${user}', '${day} 10:00:00.000', '${day} 10:05:00.000', 300000, 4, 3, '${source}', 'referral', '', '${channel}', 'mobile', 'DE', ${engaged}, ${1 - engaged}, 0, ${sign}, 1)`;
      session.query(
        `INSERT INTO sessions (site, session_id, user_key, started_at, ended_at, duration_ms, events, views, source, medium, campaign, channel, device_type, country, is_engaged, is_bounce, is_open, sign, version) VALUES ` +
          [
            row('s1', 'u1', '2024-05-02', 'web', 'google.com', 1, 1),
            row('s2', 'u1', '2024-05-02', 'web', 'google.com', 1, 0),
            row('s3', 'u2', '2024-05-03', 'app', '(direct)', 1, 1),
            row('s4', 'u3', '2024-05-03', 'app', '(direct)', 1, 0),
            row('s4', 'u3', '2024-05-03', 'app', '(direct)', -1, 0),
            // Another site, with the same user ids: no panel of the shop shows it.
            row('o1', 'u1', '2024-05-02', 'web', 'google.com', 1, 1, 'other'),
            row('o2', 'u9', '2024-05-02', 'web', 'bing.com', 1, 1, 'other'),
          ].join(', '),
      );
    });
    afterAll(() => session?.cleanup());

    it('reads only the roll-ups (and, in the People row, the people views), through the ClickHouse datasource, filtered by the dashboard range', () => {
      const rowY = (rollups.panels as Obj[]).find((p) => p.type === 'row' && p.title === 'People')?.gridPos.y as number;
      expect(rowY).toEqual(expect.any(Number));
      for (const panel of queryPanels(rollups)) {
        const inPeopleRow = panel.gridPos.y > rowY;
        for (const target of panel.targets as Obj[]) {
          const sql = String(target.rawSql);
          expect(target.datasource).toEqual({ type: 'grafana-clickhouse-datasource', uid: '${datasource}' });
          const tables = [...sql.matchAll(/\bFROM\s+([a-z_][a-z0-9_.]*)/gi)].map(([, t]) => t);
          expect(tables.length).toBeGreaterThan(0);
          for (const table of tables) expect(inPeopleRow ? ['session_persons', 'persons'] : ['sessions_daily', 'users_daily']).toContain(table);
          expect(sql).toContain('$__dateFilter(day)');
          // Every read of a table or view is of the chosen site.
          expect([...sql.matchAll(/\bsite = \$\{site:sqlstring\}/g)].length).toBeGreaterThanOrEqual(tables.length);
        }
      }
      expect(queryPanels(rollups).filter((p) => p.gridPos.y > rowY).map((p) => p.title)).toEqual([
        'People per day: new and returning',
        'Cross-device share of people',
        'People by first touch',
      ]);
    });

    it('has a datasource variable for the ClickHouse plugin, and a site variable listing the sites from it', () => {
      const variable = (rollups.templating.list as Obj[]).find((v) => v.name === 'datasource');
      expect(variable).toMatchObject({ type: 'datasource', query: 'grafana-clickhouse-datasource' });
      const site = (rollups.templating.list as Obj[]).find((v) => v.name === 'site');
      expect(site).toMatchObject({ type: 'query', datasource: { type: 'grafana-clickhouse-datasource', uid: '${datasource}' }, multi: false, includeAll: false });
      expect(JSON.parse(session.query(String(site?.query), 'JSONCompact')).data).toEqual([['other'], ['shop']]);
    });

    it('every panel query runs on the real schema and returns the roll-up numbers', () => {
      const results = queryPanels(rollups).map((panel) => {
        const sql = expand(String(panel.targets[0].rawSql));
        const result = JSON.parse(session.query(sql, 'JSON')) as { meta: Array<{ name: string }>; data: Obj[] };
        return { title: panel.title as string, columns: result.meta.map((m) => m.name), data: result.data };
      });
      const byTitle = Object.fromEntries(results.map((r) => [r.title, r]));
      for (const r of results) expect({ title: r.title, rows: r.data.length > 0 }).toEqual({ title: r.title, rows: true });
      const perDay = byTitle['Sessions and engaged sessions per day'] as { data: Obj[] };
      expect(perDay.data.map((d) => [String(d.time).slice(0, 10), Number(d.total_sessions), Number(d.total_engaged)])).toEqual([
        ['2024-05-02', 2, 1],
        ['2024-05-03', 1, 1],
      ]);
      const users = byTitle['Users per day'] as { data: Obj[] };
      expect(users.data.map((d) => Number(d.users))).toEqual([1, 1]);
      // People: u1 (two sessions on the 2nd) and u2 (the 3rd); u3's only session was cancelled.
      const people = byTitle['People per day: new and returning'] as { data: Obj[] };
      expect(people.data.map((d) => [String(d.time).slice(0, 10), Number(d.people), Number(d.new_people), Number(d.returning_people)])).toEqual([
        ['2024-05-02', 1, 1, 0],
        ['2024-05-03', 1, 1, 0],
      ]);
      const touch = byTitle['People by first touch'] as { data: Obj[] };
      expect(touch.data.map((d) => [d.first_source, Number(d.total_people)])).toEqual([
        ['(direct)', 1],
        ['google.com', 1],
      ]);
      for (const r of results.filter((x) => (rollups.panels as Obj[]).find((p) => p.title === x.title)?.type !== 'table')) {
        expect({ title: r.title, first: r.columns[0] }).toEqual({ title: r.title, first: 'time' });
      }
    });
  });
});
