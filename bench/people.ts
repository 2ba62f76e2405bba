/**
 * `npm run bench:people`: how fast the people views read in the ClickHouse of CLICKHOUSE_URL.
 * Makes a scratch database, migrates it, fills it with BENCH_SESSIONS synthetic current
 * sessions (default 1,000,000, over 30 days; people with ~2.5 devices, a shared device in 11,
 * store purchases by user id alone, a key event in 20 sessions) and the events that link their
 * devices, then times (median of BENCH_RUNS, default 3):
 *   - a day's person journeys: every session, numbered across devices, of the people active
 *     on one day (person_sessions);
 *   - all of persons, and an audience count.
 * Each is printed as the median and the best of the runs (on a shared machine the best is
 * closest to what the query costs by itself).
 * BENCH_SIZES=250000,500000,1000000 repeats for several sizes (how it scales). The database
 * is dropped at the end (kept with BENCH_KEEP=1, to try queries on it).
 */
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { loadavg } from 'node:os';
import { migrate } from '../src/clickhouse/migrations';
import { median } from './stats';

const URL = process.env.CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_SIZES ?? process.env.BENCH_SESSIONS ?? '1000000').split(',').map(Number);
const DAY = '2024-05-15';

async function main(): Promise<void> {
  const client = createClient({ url: URL, username: process.env.CLICKHOUSE_USER ?? 'default', password: process.env.CLICKHOUSE_PASSWORD ?? '', request_timeout: 600_000, log: { level: ClickHouseLogLevel.OFF } });
  const database = `bench_people_${Date.now().toString(36)}`;
  try {
    await migrate(client, { database, cluster: '' });
    for (const size of SIZES) {
      await fill(client, database, size);
      const timings: Array<[string, number, number, string]> = [];
      for (const [name, sql] of queries(database)) {
        const ms: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          // Every column computed and sent (FORMAT Null drops them on the server, not the work).
          const started = performance.now();
          await client.command({ query: `${sql} FORMAT Null` });
          ms.push(performance.now() - started);
        }
        const counted = await client.query({ query: `SELECT count() AS n FROM (${sql})`, format: 'JSONEachRow' });
        const rows = String((await counted.json<{ n: string }>())[0]?.n);
        timings.push([name, median(ms), Math.min(...ms), rows]);
      }
      console.log(`\n${size.toLocaleString('en')} sessions (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}):`);
      for (const [name, ms, min, rows] of timings) console.log(`  ${name.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms median, ${min.toFixed(0).padStart(6)} ms best  (${rows} rows)`);
    }
  } finally {
    if (process.env.BENCH_KEEP) console.log(`kept database ${database}`);
    else await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await client.close();
  }
}

function queries(db: string): Array<[string, string]> {
  return [
    ['day journeys: person_sessions, people of a day', `SELECT * FROM ${db}.person_sessions WHERE person_id IN (SELECT person_id FROM ${db}.session_persons WHERE toDate(started_at) = '${DAY}')`],
    ['a day of person_sessions (numbered)', `SELECT * FROM ${db}.person_sessions WHERE toDate(started_at) = '${DAY}'`],
    ['all persons', `SELECT * FROM ${db}.persons`],
    ['audience: converted, first touch newsletter', `SELECT person_id FROM ${db}.persons WHERE converting_sessions > 0 AND first_source = 'newsletter'`],
  ];
}

async function fill(client: ReturnType<typeof createClient>, db: string, sessions: number): Promise<void> {
  for (const table of ['sessions', 'events', 'identity_links']) await client.command({ query: `TRUNCATE TABLE ${db}.${table}` });
  const devices = Math.max(10, Math.round(sessions / 3));
  const persons = Math.max(4, Math.round(devices / 2.5));
  // device d belongs to person d % persons; every 11th device passes to the next person in its
  // second half of the month (shared); 3 devices in 5 ever log in; 1 session in 25 is a store
  // purchase by user id alone.
  await client.command({
    query: `
      INSERT INTO ${db}.sessions
      SELECT
        lower(hex(MD5(toString(number)))) AS session_id,
        if(store, concat('u', toString(person)), concat('a', toString(device))) AS user_key,
        if(store, '', user_key) AS anonymous_id,
        multiIf(store, user_key, device % 5 < 3 AND number % 3 = 0, concat('u', toString(person)), '') AS user_id,
        toDateTime64('2024-05-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(intDiv(number * 2592000000, ${sessions})) AS started_at,
        started_at + toIntervalSecond(number % 900) AS ended_at,
        (number % 900) * 1000 AS duration_ms, 1 + number % 9 AS events, number % 5 AS views, '/', '/checkout',
        ['google', '(direct)', 'newsletter', 'facebook'][1 + number % 4], ['cpc', '(none)', 'email', 'social'][1 + number % 4],
        ['spring', '', 'weekly', 'retarget'][1 + number % 4], '', '',
        if(store, 'store', ['web', 'app'][1 + device % 2]), ['desktop', 'mobile', 'tablet'][1 + device % 3], '', '', '',
        ['DE', 'FR', 'US', 'GB'][1 + person % 4], '', '',
        toUInt8(views >= 2 OR duration_ms >= 10000) AS is_engaged, 1 - is_engaged, 1, '', 0, 1, 1
      FROM
      (
        SELECT number, cityHash64(number) % ${devices} AS device, number % 25 = 0 AS store,
               (device + if(device % 11 = 0 AND number * 2 > ${sessions}, 1, 0)) % ${persons} AS person
        FROM numbers(${sessions})
      )`,
  });
  await client.command({
    query: `
      INSERT INTO ${db}.events (event_id, user_key, anonymous_id, user_id, timestamp, type, key_event)
      SELECT concat('e', session_id), user_key, anonymous_id, user_id, started_at + toIntervalSecond(1), 'track',
             toUInt8(cityHash64(session_id) % 20 = 0)
      FROM ${db}.sessions
      WHERE cityHash64(session_id) % 20 = 0 OR user_id != ''`,
  });
  await client.command({ query: `OPTIMIZE TABLE ${db}.sessions FINAL` });
  await client.command({ query: `OPTIMIZE TABLE ${db}.identity_links FINAL` });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
