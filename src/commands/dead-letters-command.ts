/**
 * `sessionizer dead-letters list|replay`: what the worker rejected, and sending it back.
 *
 * `list` reads the dead-letter topic (KAFKA_DEAD_LETTER_TOPIC) from its start to its current
 * end and prints each message with the reason and where it came from (the headers the worker
 * added), as a table or as NDJSON. `replay` sends the selected messages, key and value
 * unchanged, to the event topic they came from (or `--to`), once the cause was fixed (a
 * producer bug fixed in the worker's rules, a topic misconfiguration...). The worker
 * de-duplicates by event_id, so replaying twice counts once. To fix the messages themselves,
 * `list --format ndjson`, edit the `value`s, and `produce` them.
 *
 * The dead-letter topic is only read: a throw-away consumer group, no commits.
 */
import type { IHeaders, Kafka, Message } from 'kafkajs';
import { loadConfig, type Config } from '../config';
import { parseSiteOption } from '../clickhouse/site-scope';
import { UsageError } from '../errors';
import { DEFAULT_SITE, isValidSite } from '../events/visitor-key';
import { DEAD_LETTER_HEADERS } from '../kafka/dead-letter';
import { createKafka } from '../kafka/kafka-client';
import { COMMAND_RESEND, createProducer, sendRecord } from '../kafka/producer';
import { readWholeTopic, type TopicMessage } from '../kafka/topic-reader';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';

export { parsePositions } from './command-arguments';

export const REPLAYED_FROM_HEADER = 'x-sessionizer-replayed-from';

export interface DeadLetter {
  partition: number;
  offset: string;
  time: string;
  key: string | null;
  value: string;
  reason: string;
  field: string;
  source: { topic: string; partition: number | null; offset: string };
  /** The site the event belongs to: its own `site`, else its source topic's, else `default`. */
  site: string;
  headers: IHeaders;
}

export interface DeadLetterSelection {
  /** Substring of the reason (case-insensitive). */
  reason?: string;
  sourceTopic?: string;
  /** `partition:offset` of dead-letter messages. */
  at?: string[];
  limit?: number;
  /** Only dead letters of this site. */
  site?: string;
}

export interface DeadLettersListOptions extends DeadLetterSelection {
  format: 'table' | 'ndjson';
}

export interface DeadLettersReplayOptions extends DeadLetterSelection {
  all?: boolean;
  to?: string;
  dryRun?: boolean;
  yes?: boolean;
}

interface Deps {
  config?: Config;
  write?: (text: string) => void;
}

function header(headers: IHeaders, name: string): string {
  const value = headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? '' : first.toString();
}

/**
 * The site of a dead letter, as the worker would have given its event: the message's own `site`
 * when it is a valid site name, else the site its source topic is tied to, else `default`. (A
 * message that is not even JSON still has a source topic.)
 */
export function siteOfDeadLetter(value: string, sourceTopic: string, topicSites: ReadonlyMap<string, string> = new Map()): string {
  try {
    const parsed = JSON.parse(value) as unknown;
    const own = parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>).site : undefined;
    if (typeof own === 'string' && isValidSite(own)) return own;
  } catch {
    // not JSON: the topic decides
  }
  return topicSites.get(sourceTopic) ?? DEFAULT_SITE;
}

export function toDeadLetter(message: TopicMessage, topicSites: ReadonlyMap<string, string> = new Map()): DeadLetter {
  const h = message.headers;
  const partition = header(h, DEAD_LETTER_HEADERS.partition);
  const value = message.value ? message.value.toString() : '';
  const sourceTopic = header(h, DEAD_LETTER_HEADERS.topic);
  return {
    partition: message.partition,
    offset: message.offset,
    time: new Date(Number(message.timestamp)).toISOString(),
    key: message.key ? message.key.toString() : null,
    value,
    reason: header(h, DEAD_LETTER_HEADERS.reason),
    field: header(h, DEAD_LETTER_HEADERS.field),
    source: { topic: sourceTopic, partition: partition === '' ? null : Number(partition), offset: header(h, DEAD_LETTER_HEADERS.offset) },
    site: siteOfDeadLetter(value, sourceTopic, topicSites),
    headers: h,
  };
}

export function selects(selection: DeadLetterSelection): (letter: DeadLetter) => boolean {
  const reason = selection.reason?.toLowerCase();
  const at = selection.at ? new Set(selection.at) : null;
  return (letter) =>
    (reason === undefined || letter.reason.toLowerCase().includes(reason)) &&
    (selection.sourceTopic === undefined || letter.source.topic === selection.sourceTopic) &&
    (selection.site === undefined || letter.site === selection.site) &&
    (at === null || at.has(`${letter.partition}:${letter.offset}`));
}

/**
 * Each rejected message once. The worker sends dead letters at least once: a batch read again
 * after a crash or a rebalance, before its state was committed, sends its rejects again. They
 * carry the same source topic, partition and offset, so the first one stands for all.
 */
export function firstPerSource(letters: readonly DeadLetter[]): DeadLetter[] {
  const seen = new Set<string>();
  return letters.filter((letter) => {
    if (!letter.source.topic || letter.source.partition === null) return true;
    const source = `${letter.source.topic}\u0000${letter.source.partition}\u0000${letter.source.offset}`;
    if (seen.has(source)) return false;
    seen.add(source);
    return true;
  });
}

/** Commander parser for `--at 0:12,3:7`. */

async function readDeadLetters(config: Config, selection: DeadLetterSelection, command: string): Promise<{ kafka: Kafka; letters: DeadLetter[] }> {
  const log = createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command });
  const topic = config.kafka.deadLetterTopic;
  await preflight(config, { kafka: { topics: [topic] } }, log);
  const kafka = createKafka(config.kafka, log, { quiet: true });
  const letters: DeadLetter[] = [];
  const wanted = selects(selection);
  // Topics tied to a site (KAFKA_TOPIC_SITES), when this release's configuration has them.
  const topicSites = (config.kafka as { topicSites?: ReadonlyMap<string, string> }).topicSites ?? new Map<string, string>();
  await readWholeTopic(kafka, topic, config.kafka.groupId, (message) => {
    const letter = toDeadLetter(message, topicSites);
    if (wanted(letter)) letters.push(letter);
  });
  letters.sort((a, b) => Number(BigInt(a.offset) - BigInt(b.offset)) || a.partition - b.partition);
  // Oldest first; --limit keeps the first N.
  const once = firstPerSource(letters);
  return { kafka, letters: selection.limit ? once.slice(0, selection.limit) : once };
}

/** Printable on a terminal: control characters and invalid bytes escaped, long text cut. */
export function printable(text: string, max: number): string {
  const safe = JSON.stringify(text).slice(1, -1); // escapes control characters, quotes and backslashes
  return safe.length > max ? `${safe.slice(0, max - 1)}…` : safe;
}

export function formatDeadLetterTable(letters: readonly DeadLetter[]): string {
  const header = ['AT', 'TIME', 'SOURCE', 'FIELD', 'REASON', 'VALUE'];
  const rows = letters.map((l) => [
    `${l.partition}:${l.offset}`,
    l.time.slice(0, 19) + 'Z',
    l.source.topic ? `${l.source.topic}[${l.source.partition ?? '?'}]@${l.source.offset}` : '(unknown)',
    printable(l.field || '-', 24),
    printable(l.reason, 60),
    printable(l.value, 60),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export async function runDeadLettersList(options: DeadLettersListOptions, deps: Deps = {}): Promise<DeadLetter[]> {
  parseSiteOption('dead-letters list', options.site);
  const config = deps.config ?? loadConfig();
  const write = deps.write ?? ((text: string) => void process.stdout.write(text));
  const { letters } = await readDeadLetters(config, options, 'dead-letters');
  if (options.format === 'ndjson') {
    for (const l of letters) {
      const { headers: _headers, ...rest } = l;
      write(JSON.stringify(rest) + '\n');
    }
  } else {
    write(letters.length === 0 ? `no dead letters in ${config.kafka.deadLetterTopic}${options.reason || options.sourceTopic || options.at || options.site ? ' matching the selection' : ''}\n` : formatDeadLetterTable(letters));
  }
  return letters;
}

export async function runDeadLettersReplay(options: DeadLettersReplayOptions, deps: Deps = {}): Promise<{ replayed: number; selected: DeadLetter[] }> {
  parseSiteOption('dead-letters replay', options.site);
  if (!options.all && options.reason === undefined && options.sourceTopic === undefined && options.at === undefined && options.site === undefined) {
    throw new UsageError('dead-letters replay: select messages with --at, --reason, --source-topic or --site, or say --all');
  }
  if (!options.dryRun && !options.yes) throw new UsageError('dead-letters replay: add --dry-run to see what would be sent, or --yes to send it');
  const config = deps.config ?? loadConfig();
  const write = deps.write ?? ((text: string) => void process.stdout.write(text));
  const { kafka, letters } = await readDeadLetters(config, options, 'dead-letters');
  const targetOf = (l: DeadLetter) => options.to ?? (config.kafka.topics.includes(l.source.topic) ? l.source.topic : (config.kafka.topics[0] as string));
  const byTopic = new Map<string, Message[]>();
  for (const l of letters) {
    const headers: IHeaders = {};
    for (const [name, value] of Object.entries(l.headers)) if (!name.startsWith('x-sessionizer-') && value !== undefined) headers[name] = value;
    headers[REPLAYED_FROM_HEADER] = `${config.kafka.deadLetterTopic}:${l.partition}:${l.offset}`;
    const list = byTopic.get(targetOf(l)) ?? [];
    list.push({ key: l.key, value: l.value, headers });
    byTopic.set(targetOf(l), list);
  }
  const summary = [...byTopic].map(([topic, messages]) => `${messages.length} to ${topic}`).join(', ') || 'nothing';
  if (options.dryRun) {
    write(`dead-letters replay: would send ${summary} (dry run, nothing sent)\n`);
    return { replayed: 0, selected: letters };
  }
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    for (const [topic, messages] of byTopic) await sendRecord(() => producer, { topic, acks: -1, messages }, COMMAND_RESEND);
  } finally {
    await producer.disconnect();
  }
  write(`dead-letters replay: sent ${summary}\n`);
  return { replayed: letters.length, selected: letters };
}
