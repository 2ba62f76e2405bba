/**
 * `sessionizer produce --input FILE|- [--topic NAME]`: sends events NDJSON to Kafka (the first
 * of KAFKA_TOPICS unless --topic says otherwise), one message per line, keyed by user key
 * (`anonymous_id ?? user_id`), in batches.
 *
 * Validating events is the worker's job: a JSON object is sent as it is, even when it is not a
 * valid event, and the worker dead-letters it (so this command can feed dead-letter tests too).
 * Only lines that cannot be a message at all are skipped, reported on stderr with their line
 * numbers: lines that are not UTF-8, lines that are not JSON, JSON that is not an object, and
 * lines over the 64 KiB message limit. Blank lines are ignored. An input that is plainly not
 * text (compressed, UTF-16, NUL bytes) is refused as unreadable (exit 2) at its first chunk.
 *
 * Exit codes: 0 when every other line was sent, 1 when Kafka fails, 2 for bad usage,
 * bad configuration or an unreadable input (checked before connecting).
 */
import type { Kafka } from 'kafkajs';
import { loadConfig, type Config } from '../config';
import { NoValidEventsError, UnreadableInputError, UsageError } from '../errors';
import { MAX_EVENT_BYTES } from '../events/parse-event';
import { eventTimeOf, redateEvent, redateShift } from '../events/redate';
import { BinaryInputError, refuseBinaryInput } from '../io/binary-input';
import { openInput } from '../io/input-file';
import { InvalidLineReport } from '../io/invalid-lines';
import { NotUtf8Line, readLines, type Line } from '../io/line-reader';
import { createProgress, formatBytes } from '../io/progress';
import { ensureTopic, EventSender, userKeyOfJson } from '../kafka/event-sender';
import { createKafka } from '../kafka/kafka-client';
import { printable } from '../events/utf8';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';

export interface ProduceCommandOptions {
  input: string;
  topic?: string;
  /** Shift every timestamp by one amount so the newest event falls a minute before now. */
  redate?: boolean;
}

export interface ProduceCommandDeps {
  /** Configuration; read from the environment when absent. */
  config?: Config;
  /** Where reports and the final count go; stderr by default. */
  log?: (text: string) => void;
  /** Show a progress bar (default: when stderr is a terminal and the input a file). */
  progress?: boolean;
  /** Between progress lines when there is no bar; 10 s by default. */
  progressIntervalMs?: number;
  /** The clock, for --redate. */
  now?: () => number;
}

export interface ProduceStats {
  topic: string;
  lines: number;
  sent: number;
  skipped: number;
  /** Days (to a tenth) every timestamp was moved by (--redate), else 0. */
  redatedDays: number;
}

export type LineVerdict = { key: string | null; value: string } | { skip: string } | null;


/** What to do with one input line: send it (with its key), skip it (why), or ignore it (blank). */
export function classifyLine(line: Line): LineVerdict {
  if (line instanceof NotUtf8Line) return { skip: line.reason };
  if (line.trim() === '') return null;
  if (Buffer.byteLength(line) > MAX_EVENT_BYTES) return { skip: `longer than the ${MAX_EVENT_BYTES / 1024} KiB message limit` };
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (err) {
    return { skip: `not JSON (${printable((err as Error).message)})` };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { skip: 'not a JSON object' };
  return { key: userKeyOfJson(json as Record<string, unknown>), value: line };
}

export async function runProduce(options: ProduceCommandOptions, deps: ProduceCommandDeps = {}): Promise<ProduceStats> {
  const started = Date.now();
  const config = deps.config ?? loadConfig();
  const write = deps.log ?? ((text: string) => void process.stderr.write(text));
  const topic = options.topic ?? (config.kafka.topics[0] as string);
  if (options.redate && options.input === '-') throw new UsageError('produce: --redate reads the input twice; give a file, not -');
  const shiftMs = options.redate ? await redateShiftOf(options.input, (deps.now ?? Date.now)()) : 0;
  const { stream, size } = openInput(options.input, MAX_EVENT_BYTES);

  const log = createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'produce' });
  // Connected at the first line worth sending: an empty or all-invalid file needs no Kafka.
  let sender: EventSender | null = null;
  const connect = async (): Promise<EventSender> => {
    await preflight(config, { kafka: { topics: [topic] } }, log);
    const kafka: Kafka = createKafka(config.kafka, log, { quiet: true });
    if (config.kafka.createTopics) await ensureTopic(kafka, topic, config.kafka.topicPartitions);
    return EventSender.connect(kafka, topic);
  };

  const progress = createProgress({
    tty: deps.progress ?? (process.stderr.isTTY && size !== null),
    barFormat: 'produce [{bar}] {percentage}% | {sent} sent | {duration_formatted}',
    line: (read, total, fields) =>
      `produce: ${formatBytes(read)}${total > 0 ? ` of ${formatBytes(total)} (${Math.floor((100 * read) / total)}%)` : ''} read, ` +
      `${fields.lines} lines, ${fields.sent} sent, ${fields.skipped} skipped`,
    intervalMs: deps.progressIntervalMs,
    write,
  });
  const held: string[] = [];
  // The first few skipped lines, then counts by reason: a file that is not events at all (a
  // README) must not print a hundred lines of the same JSON error.
  const skippedLines = new InvalidLineReport(undefined, { noun: 'skipped lines', prefix: 'skipped, ', rejectsOption: false });
  const report = (text: string) => (progress.isBar ? held.push(text) : write(text));
  const stats: ProduceStats = { topic, lines: 0, sent: 0, skipped: 0, redatedDays: Math.round((shiftMs / 86_400_000) * 10) / 10 };
  let readBytes = 0;
  progress.start(size ?? 0, { sent: 0, lines: 0, skipped: 0 });
  try {
    for await (const line of readLines(refuseBinaryInput(stream), (bytes) => (readBytes += bytes))) {
      stats.lines += 1;
      const verdict = classifyLine(line);
      if (verdict === null) continue;
      if ('skip' in verdict) {
        stats.skipped += 1;
        const text = skippedLines.add(stats.lines, verdict.skip);
        if (text !== null) report(text);
        continue;
      }
      sender ??= await connect();
      await sender.add(verdict.key, shiftMs === 0 ? verdict.value : redateLine(verdict.value, shiftMs));
      if (stats.lines % 1000 === 0) progress.update(readBytes, { sent: sender.sent, lines: stats.lines, skipped: stats.skipped });
    }
    await sender?.close();
  } catch (err) {
    await sender?.abort();
    if (isReadError(err)) throw new UnreadableInputError(options.input, err);
    if (err instanceof BinaryInputError) throw new UnreadableInputError(options.input === '-' ? 'stdin' : options.input, err.reason);
    throw err;
  } finally {
    progress.stop();
    for (const text of held) write(text);
  }
  stats.sent = sender?.sent ?? 0;
  write(skippedLines.summary());
  if (stats.sent === 0 && stats.skipped > 0) {
    throw new NoValidEventsError(options.input === '-' ? 'stdin' : options.input, stats.lines, 'events NDJSON, one JSON object per line (schemas/event.schema.json)');
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const moved = stats.redatedDays !== 0 ? `, timestamps moved ${stats.redatedDays} days forward` : '';
  write(`produce: ${stats.sent} events sent to ${topic}, ${stats.skipped} lines skipped${moved}, in ${seconds}s\n`);
  return stats;
}

/** First pass of --redate: the newest valid timestamp in the file gives the shift. */
async function redateShiftOf(path: string, nowMs: number): Promise<number> {
  const { stream } = openInput(path, MAX_EVENT_BYTES);
  let latest = -Infinity;
  for await (const line of readLines(refuseBinaryInput(stream))) {
    const verdict = classifyLine(line);
    if (verdict === null || 'skip' in verdict) continue;
    const ms = eventTimeOf(JSON.parse(line as string) as Record<string, unknown>);
    if (ms !== null && ms > latest) latest = ms;
  }
  return Number.isFinite(latest) ? redateShift(latest, nowMs) : 0;
}

function redateLine(line: string, shiftMs: number): string {
  const json = JSON.parse(line) as Record<string, unknown>;
  return redateEvent(json, shiftMs) ? JSON.stringify(json) : line;
}

/** Errors of the input stream itself (as opposed to Kafka's) carry a system error code. */
function isReadError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string' && (err as NodeJS.ErrnoException).syscall === 'read';
}
