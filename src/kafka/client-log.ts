/**
 * The level at which a kafkajs log entry goes into our log. kafkajs logs some broker answers at
 * error level although it retries them and they pass by themselves — above all on every start:
 * a new consumer group asks for its coordinator before the broker has one ("The group
 * coordinator is not available"), and a topic just created has no leader for a moment. A clean
 * start must not show an error (operators alert on them), so these are logged at info; every
 * other entry keeps the level kafkajs gave it.
 */
import { logLevel as KafkaLogLevel, type LogEntry } from 'kafkajs';

/** Retried by kafkajs, expected while a group forms or a topic is created; `error` field of the entry. */
const EXPECTED_WHILE_STARTING = [
  'The group coordinator is not available',
  "The coordinator is loading and hence can't process requests",
  'There is no leader for this topic-partition as we are in the middle of a leadership election',
];

export type ClientLogLevel = 'error' | 'warn' | 'info' | 'debug';

export function clientLogLevel(entry: Pick<LogEntry, 'level' | 'log'>): ClientLogLevel {
  const error = (entry.log as { error?: unknown }).error;
  if (typeof error === 'string' && EXPECTED_WHILE_STARTING.some((text) => error.startsWith(text))) return 'info';
  if (entry.level <= KafkaLogLevel.ERROR) return 'error';
  if (entry.level === KafkaLogLevel.WARN) return 'warn';
  return 'debug';
}
