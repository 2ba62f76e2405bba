/**
 * `sessionizer audience [filters] [--format ndjson|csv] [--output FILE|-] [--into-table NAME [--replace]] [--count]`:
 * exports the people (the `persons` view) who match every filter given. Rows stream from
 * ClickHouse to the file as they come, so an export of millions of people holds little in
 * memory; progress goes to stderr. Filters are validated before anything is queried (exit 2).
 */
import { once } from 'node:events';
import { createWriteStream, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { createClickHouseClient } from '../clickhouse/client';
import { loadConfig, type Config } from '../config';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';
import { UsageError } from '../errors';
import { singleSite, sitesWithSessions } from '../clickhouse/site-scope';
import {
  audienceCount,
  audienceFilterSchema,
  audienceIntoTable,
  audienceOutputSchema,
  audienceSelect,
  type AudienceFilter,
  type AudienceOutput,
} from '../people/audience';

/** Options as commander hands them over (strings and flags), before validation. */
export type AudienceCommandOptions = Record<string, unknown>;

export interface AudienceDeps {
  config?: Config;
  /** Where `--output -` and `--count` write; stdout by default. */
  stdout?: Writable;
  /** Progress and the summary line; stderr by default. */
  log?: (line: string) => void;
}

export interface AudienceResult {
  people: number;
}

const FILTER_KEYS = ['site', 'since', 'minSessions', 'engaged', 'converted', 'source', 'medium', 'campaign', 'touch', 'channel', 'country', 'deviceType'] as const;
const OUTPUT_KEYS = ['format', 'output', 'intoTable', 'replace', 'count'] as const;
const PROGRESS_EVERY = 100_000;

/** Validates commander's options into filters and output choices; UsageError naming every problem. */
export function parseAudienceOptions(options: AudienceCommandOptions): { filter: AudienceFilter; output: AudienceOutput } {
  const pick = (keys: readonly string[]) => Object.fromEntries(keys.filter((k) => options[k] !== undefined).map((k) => [k, options[k]]));
  const filter = audienceFilterSchema.safeParse(pick(FILTER_KEYS));
  const output = audienceOutputSchema.safeParse(pick(OUTPUT_KEYS));
  const problems = [...(filter.success ? [] : filter.error.issues), ...(output.success ? [] : output.error.issues)].map((issue) =>
    issue.path.length > 0 && !issue.message.startsWith('--') ? `--${flagOf(String(issue.path[0]))}: ${issue.message}` : issue.message,
  );
  if (!filter.success || !output.success) throw new UsageError(`audience: ${problems.join('; ')}`);
  const chosen = output.data;
  if (chosen.intoTable !== undefined && (chosen.count || options.output !== undefined || options.format !== undefined)) {
    throw new UsageError('audience: --into-table writes to ClickHouse; it does not go with --count, --output or --format');
  }
  if (chosen.replace && chosen.intoTable === undefined) throw new UsageError('audience: --replace needs --into-table');
  if (chosen.count && options.output !== undefined) throw new UsageError('audience: --count prints to stdout; it does not go with --output');
  return { filter: filter.data, output: chosen };
}

function flagOf(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export async function runAudience(options: AudienceCommandOptions, deps: AudienceDeps = {}): Promise<AudienceResult> {
  const { filter, output } = parseAudienceOptions(options);
  const config = deps.config ?? loadConfig();
  const database = config.clickhouse.database;
  const stdout = deps.stdout ?? process.stdout;
  const log = deps.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  await preflight(config, { clickhouse: true }, createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'audience' }));
  const client = createClickHouseClient(config.clickhouse, { application: 'sessionizer-audience', requestTimeoutMs: 600_000 });
  try {
    // An audience is of one site's people: the one given, else the only one in the data.
    filter.site = singleSite('audience', filter.site, filter.site === undefined ? await sitesWithSessions(client, database) : []);
    if (output.count) {
      const { sql, params } = audienceCount(filter, database);
      const result = await client.query({ query: sql, query_params: params, format: 'JSONEachRow' });
      const people = Number((await result.json<{ people: string | number }>())[0]?.people ?? 0);
      await write(stdout, `${people}\n`);
      return { people };
    }
    if (output.intoTable !== undefined) {
      const { sql, params } = audienceIntoTable(filter, database, output.intoTable, output.replace);
      await client.command({ query: sql, query_params: params });
      const result = await client.query({
        query: `SELECT count() AS people FROM ${database}.{audience_table:Identifier}`,
        query_params: { audience_table: output.intoTable },
        format: 'JSONEachRow',
      });
      const people = Number((await result.json<{ people: string | number }>())[0]?.people ?? 0);
      log(`audience: ${people} people into ${database}.${output.intoTable}`);
      return { people };
    }

    const { sql, params } = audienceSelect(filter, database);
    const target = output.output === '-' ? stdout : openOutput(output.output);
    const result = await client.query({ query: sql, query_params: params, format: output.format === 'csv' ? 'CSVWithNames' : 'JSONEachRow' });
    let people = 0;
    let header = output.format === 'csv';
    for await (const rows of result.stream()) {
      let chunk = '';
      for (const row of rows as Array<{ text: string }>) {
        chunk += row.text + '\n';
        if (header) header = false;
        else people += 1;
        if (people > 0 && people % PROGRESS_EVERY === 0) log(`audience: ${people} people…`);
      }
      await write(target, chunk);
    }
    if (target !== stdout) {
      target.end();
      await once(target, 'finish');
    }
    log(`audience: ${people} people${output.output === '-' ? '' : ` written to ${output.output}`}`);
    return { people };
  } finally {
    await client.close();
  }
}

async function write(stream: Writable, text: string): Promise<void> {
  if (text !== '' && !stream.write(text)) await once(stream, 'drain');
}

function openOutput(path: string): Writable {
  try {
    return createWriteStream('', { fd: openSync(path, 'w') });
  } catch (err) {
    throw new UsageError(`audience: cannot write ${path}: ${(err as Error).message}`);
  }
}
