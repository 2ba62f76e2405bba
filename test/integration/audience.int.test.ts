/**
 * `sessionizer audience` against known people: sessions and events of people with several
 * devices written into ClickHouse, and each filter's answer computed here from the same data
 * with the journey rules (src/people/journey.ts). Hostile values find nothing and break nothing.
 * `report --people` against the same people.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate } from '../../src/clickhouse/migrations';
import { runAudience, type AudienceCommandOptions } from '../../src/commands/audience-command';
import { runReport } from '../../src/commands/report-command';
import type { Config } from '../../src/config';
import type { RawEvent } from '../../src/loadgen/traffic';
import type { PersonSummary } from '../../src/people/journey';
import { SessionizerError } from '../../src/errors';
import { useTestDatabase } from '../support';
import { offlinePeople, PEOPLE_START, peopleTraffic, type OfflinePeople } from '../support/people';
import { configFor } from './clickhouse-fixtures';

jest.setTimeout(120_000);

const db = useTestDatabase('audience');
let client: ClickHouseClient;
let config: Config;
let offline: OfflinePeople;
let dir: string;

const text = (v: unknown) => (typeof v === 'string' ? v : '');
const timeOf = (e: RawEvent) => (typeof e.timestamp === 'number' ? e.timestamp : Date.parse(String(e.timestamp)));

beforeAll(async () => {
  client = db.client;
  await migrate(client, { database: db.name, cluster: '' });
  const events = peopleTraffic(400, 130, 41);
  offline = await offlinePeople(events);
  await client.insert({
    table: `${db.name}.sessions`,
    values: offline.sessions.map((s) => ({ ...s, is_open: 0, sign: 1, version: 1 })),
    format: 'JSONEachRow',
  });
  await client.insert({
    table: `${db.name}.events`,
    values: events.map((e) => ({
      event_id: e.event_id,
      user_key: text(e.anonymous_id) || text(e.user_id),
      anonymous_id: text(e.anonymous_id),
      user_id: text(e.user_id),
      timestamp: new Date(timeOf(e)).toISOString(),
      type: e.type,
      key_event: e.key_event === true ? 1 : 0,
    })),
    format: 'JSONEachRow',
  });
  config = await configFor(db.name);
  dir = mkdtempSync(join(tmpdir(), 'audience-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function audience(options: AudienceCommandOptions): Promise<{ out: string; people: number; log: string[] }> {
  const out = capture();
  const log: string[] = [];
  const { people } = await runAudience(options, { config, stdout: out.stream, log: (line) => log.push(line) });
  return { out: out.text(), people, log };
}

async function exported(options: AudienceCommandOptions): Promise<string[]> {
  const { out, people } = await audience(options);
  const ids = out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as PersonSummary).person_id);
  expect(people).toBe(ids.length);
  const count = await audience({ ...options, count: true });
  expect(count.out).toBe(`${ids.length}\n`);
  return ids;
}

const ids = (people: PersonSummary[]) => people.map((p) => p.person_id).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

describe('sessionizer audience', () => {
  const MIDDAY = new Date(PEOPLE_START + 6 * 3_600_000).toISOString();
  const cases: Array<[string, AudienceCommandOptions, (p: PersonSummary) => boolean]> = [
    ['everyone', {}, () => true],
    ['--since', { since: MIDDAY }, (p) => p.last_seen >= MIDDAY],
    ['--min-sessions', { minSessions: '4' }, (p) => p.sessions >= 4],
    ['--engaged', { engaged: true }, (p) => p.engaged_sessions > 0],
    ['--converted', { converted: true }, (p) => p.converting_sessions > 0],
    ['--source (first touch)', { source: 'newsletter' }, (p) => p.first_source === 'newsletter'],
    ['--medium --touch last', { medium: 'cpc', touch: 'last' }, (p) => p.last_medium === 'cpc'],
    ['--campaign', { campaign: 'spring' }, (p) => p.first_campaign === 'spring'],
    ['--channel', { channel: 'store' }, (p) => p.channels.includes('store')],
    ['--country (any case)', { country: 'de' }, (p) => p.countries.includes('DE')],
    ['--device-type', { deviceType: 'mobile' }, (p) => p.device_types.includes('mobile')],
    ['combined', { channel: 'web', engaged: true, minSessions: '2', country: 'US' }, (p) => p.channels.includes('web') && p.engaged_sessions > 0 && p.sessions >= 2 && p.countries.includes('US')],
  ];

  it.each(cases)('%s selects exactly the matching people', async (_name, options, matches) => {
    const expected = ids(offline.persons.filter(matches));
    expect(await exported(options)).toEqual(expected);
  });

  it('the filters are not trivial on this data', () => {
    for (const [name, , matches] of cases.slice(1)) {
      const n = offline.persons.filter(matches).length;
      // Nearly everyone with a few sessions has an engaged one: --engaged may match all.
      expect([name, n > 0 && (name === '--engaged' || n < offline.persons.length)]).toEqual([name, true]);
    }
  });

  it('--touch any matches people with any session from the source', async () => {
    const bySession = new Set(offline.personSessions.filter((s) => s.source === 'google' && s.medium === 'cpc').map((s) => s.person_id));
    expect(await exported({ source: 'google', medium: 'cpc', touch: 'any' })).toEqual(ids(offline.persons.filter((p) => bySession.has(p.person_id))));
  });

  it('writes CSV with a header to a file, and a table for activation tools', async () => {
    const file = join(dir, 'people.csv');
    const csv = await audience({ converted: true, format: 'csv', output: file });
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('"person_id","first_seen","last_seen","sessions","engaged_sessions","converting_sessions","first_source","first_medium","first_campaign","last_source","last_medium","last_campaign","channels","device_types","countries","user_keys"');
    const expected = ids(offline.persons.filter((p) => p.converting_sessions > 0));
    expect(lines.slice(1).map((l) => JSON.parse(l.slice(0, l.indexOf(',')))).sort()).toEqual([...expected].sort());
    expect(csv.people).toBe(expected.length);
    expect(csv.log.join('\n')).toContain(`${expected.length} people written to ${file}`);

    const table = await audience({ converted: true, intoTable: 'spring_buyers' });
    expect(table.people).toBe(expected.length);
    await expect(audience({ converted: true, intoTable: 'spring_buyers' })).rejects.toThrow(/exists/);
    expect((await audience({ engaged: true, intoTable: 'spring_buyers', replace: true })).people).toBe(offline.persons.filter((p) => p.engaged_sessions > 0).length);
  });

  it('passes hostile values as parameters: they match nothing and break nothing', async () => {
    const hostile = ["x' OR '1'='1", "') OR 1=1 --", 'newsletter\' UNION SELECT * FROM system.tables --', '{source:String}', 'a`b"c\\'];
    for (const value of hostile) {
      for (const option of ['source', 'medium', 'campaign', 'deviceType']) {
        expect([value, option, (await audience({ [option]: value, count: true })).out]).toEqual([value, option, '0\n']);
      }
      expect((await audience({ source: value, touch: 'any', count: true })).out).toBe('0\n');
    }
    const refused: AudienceCommandOptions[] = [
      { country: "DE' OR 1=1" },
      { channel: 'web OR 1=1' },
      { minSessions: '1; DROP TABLE sessions' },
      { since: "2024-01-01' --" },
      { intoTable: 'x; DROP TABLE sessions' },
      { intoTable: 'sessions`' },
      { source: 'line\nbreak' },
    ];
    for (const options of refused) {
      await expect(audience(options)).rejects.toMatchObject({ code: 'BAD_USAGE' } satisfies Partial<SessionizerError>);
    }
    const count = await client.query({ query: `SELECT count() AS n FROM ${db.name}.sessions`, format: 'JSONEachRow' });
    expect(Number((await count.json<{ n: string }>())[0]?.n)).toBe(offline.sessions.length);
    expect((await audience({ count: true })).out).toBe(`${offline.persons.length}\n`);
  });
});

describe('sessionizer report --people', () => {
  /** The expected rows, computed here from recompute's output and the journey rules. */
  function expectedRows(by?: 'channel' | 'first_source'): Array<Record<string, string | number>> {
    const personOf = new Map(offline.persons.map((p) => [p.person_id, p]));
    const groups = new Map<string, { day: string; group: string; people: Set<string>; sessions: number }>();
    for (const s of offline.personSessions) {
      const day = s.started_at.slice(0, 10);
      const group = by === undefined ? '' : by === 'channel' ? s.channel : (personOf.get(s.person_id) as PersonSummary).first_source;
      const key = `${day}|${group}`;
      const entry = groups.get(key) ?? { day, group, people: new Set<string>(), sessions: 0 };
      entry.people.add(s.person_id);
      entry.sessions += 1;
      groups.set(key, entry);
    }
    return [...groups.values()].map(({ day, group, people, sessions }) => {
      const list = [...people].map((id) => personOf.get(id) as PersonSummary);
      const fresh = list.filter((p) => p.first_seen.slice(0, 10) === day).length;
      const cross = list.filter((p) => p.user_keys > 1).length;
      return {
        day,
        ...(by ? { [by]: group } : {}),
        people: people.size,
        new_people: fresh,
        returning_people: people.size - fresh,
        sessions,
        sessions_per_person: Math.round((sessions / people.size) * 1000) / 1000,
        cross_device_people: cross,
        cross_device_share: Math.round((cross / people.size) * 10000) / 10000,
      };
    });
  }

  const order = (rows: Array<Record<string, string | number>>) => [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

  it.each([undefined, 'channel', 'first_source'] as const)('gives people, new vs returning and cross-device people by %s', async (by) => {
    let text = '';
    await runReport({ from: '2024-04-30', to: '2024-05-03', format: 'json', people: true, by }, { config, write: (t) => (text += t) });
    const rows = JSON.parse(text) as Array<Record<string, string | number>>;
    expect(order(rows)).toEqual(order(expectedRows(by)));
    const total = rows.reduce((n, r) => n + Number(r.people), 0);
    expect(total).toBeGreaterThan(0);
    if (by === undefined) expect(rows.some((r) => Number(r.returning_people) > 0 && Number(r.cross_device_people) > 0)).toBe(true);
  });

  it('refuses a person dimension without --people', async () => {
    await expect(runReport({ from: '2024-05-01', to: '2024-05-01', format: 'json', by: 'first_source' }, { config })).rejects.toThrow(/needs --people/);
  });
});
