/**
 * The people panel's figures through the Stats API: new and returning visitors
 * (visit:visitor_type: Returning for a user key's later session), on traffic written as the
 * worker writes it (retractions, merges, renumbered sessions), equal the sessions left standing,
 * before and after ClickHouse merges the parts.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate } from '../../src/clickhouse/migrations';
import type { SiteConfig } from '../../src/dashboard/config';
import { parseStatsQuery, runStatsQuery } from '../../src/dashboard/stats/query';
import type { SessionRow } from '../../src/engine/session-row';
import { useTestDatabase } from '../support';
import { optimizeAll, testClient } from './clickhouse-fixtures';
import { dayOf, ensureSiteColumns, writeSite, type SiteData } from './dashboard-fixtures';

const db = useTestDatabase('dash_people');
let client: ClickHouseClient;
let shop: SiteData;
const SITE: SiteConfig = { id: 'shop', timezone: 'Europe/Berlin', name: 'Shop' };
const START = Date.parse('2024-05-01T18:00:00.000Z');
const RANGE: [string, string] = ['2024-05-01', '2024-05-03'];

async function ask(body: object) {
  return runStatsQuery({ clickhouse: client, database: db.name, sites: [SITE], now: () => Date.parse('2024-05-03T12:00:00Z') }, parseStatsQuery(body));
}

function standing(): SessionRow[] {
  return shop.current.filter((r) => dayOf(r, SITE.timezone) >= RANGE[0] && dayOf(r, SITE.timezone) <= RANGE[1]);
}

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });
  await ensureSiteColumns(client, db.name);
  shop = await writeSite(client, db.name, { id: SITE.id, timezone: SITE.timezone, seed: 77, users: 80, startMs: START, spanMs: 40 * 3_600_000 });
}, 180_000);

afterAll(async () => {
  await client.close();
});

const checks = () => {
  it('visit:visitor_type splits visitors and sessions into New (first session) and Returning', async () => {
    const rows = standing();
    const expected = (returning: boolean) => {
      const group = rows.filter((r) => (r.session_number > 1) === returning);
      return [new Set(group.map((r) => r.user_key)).size, group.length];
    };
    // The traffic has both kinds.
    expect(expected(false)[1]).toBeGreaterThan(0);
    expect(expected(true)[1]).toBeGreaterThan(0);
    const answer = await ask({ site_id: SITE.id, metrics: ['visitors', 'visits'], date_range: RANGE, dimensions: ['visit:visitor_type'] });
    expect(Object.fromEntries(answer.results.map((r) => [r.dimensions[0], r.metrics]))).toEqual({ New: expected(false), Returning: expected(true) });
    // As a filter too (a click on a row of the panel).
    const returning = await ask({ site_id: SITE.id, metrics: ['visits'], date_range: RANGE, filters: [['is', 'visit:visitor_type', ['Returning']]] });
    expect(returning.results[0]?.metrics).toEqual([expected(true)[1]]);
  });
};

describe('before merges', checks);
describe('after merges', () => {
  beforeAll(async () => {
    await optimizeAll(client, db.name);
  });
  checks();
});
