/**
 * docs/queries.md: every query reads one site. Each part of a query that reads a table or view
 * of sessions, events, roll-ups or people filters on the site parameter (or joins on site), so a
 * reader copying a query never mixes two sites' visitors or people. Each block also goes
 * through ClickHouse's parser. (That they run and return rows is tested by
 * test/integration/clickhouse-queries.int.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { queryBind } from 'chdb';

const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'queries.md'), 'utf8');
const blocks = [...doc.matchAll(/```sql\n([\s\S]*?)\n```/g)].map((m) => m[1] as string);
const SITE_TABLES = ['sessions', 'sessions_daily', 'users_daily', 'events', 'identity_map', 'session_persons', 'person_sessions', 'persons'];
const READS = new RegExp(`\\b(?:FROM|JOIN)\\s+(${SITE_TABLES.join('|')})\\b`, 'g');

describe('docs/queries.md', () => {
  it('has its queries', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(19);
  });

  it.each(blocks.map((sql, i) => [i + 1, sql] as const))('query %i filters every read on the site, or joins within it', (_i, sql) => {
    const reads = [...sql.matchAll(READS)].length;
    const filters = [...sql.matchAll(/\bsite = \{site:String\}/g)].length;
    const siteJoins = [...sql.matchAll(/\bON\s+\w+\.site = \w+\.site\b/g)].length;
    expect(reads).toBeGreaterThan(0);
    expect(filters + siteJoins).toBeGreaterThanOrEqual(reads);
  });

  it.each(blocks.map((sql, i) => [i + 1, sql] as const))('query %i parses', (_i, sql) => {
    expect(() => queryBind('SELECT formatQuery({q:String})', { q: sql }, 'TSVRaw')).not.toThrow();
  });

  it('says how to give the site', () => {
    expect(doc).toContain('## Reading one site');
    expect(doc).toContain('param_site=');
    expect(doc).toContain('--param_site=');
  });
});
