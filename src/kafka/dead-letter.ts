/**
 * The dead-letter topic: a message that is not a valid event goes there with its original key,
 * value and headers, plus headers naming why and where it came from. It is never dropped and
 * never stops the worker. Delivery is at least once: a batch replayed after a crash may send a
 * rejected message again (consumers of the topic de-duplicate by source topic/partition/offset).
 *
 * Every send fits the dead-letter topic's `max.message.bytes`: a message that alone would not
 * fit is replaced by a small JSON record saying where the original is (source topic, partition,
 * offset), its size and why it was rejected; the rest go in sends that each fit. A send the
 * broker would refuse for its size would otherwise be refused forever and stall the partition.
 */
import { ConfigResourceTypes, type Admin, type IHeaders, type Message, type Producer } from 'kafkajs';
import type { DeadLetterPort } from '../worker/partition-processor';
import type { RejectedMessage } from '../worker/batch-plan';

export const DEAD_LETTER_HEADERS = {
  reason: 'x-sessionizer-error',
  field: 'x-sessionizer-error-field',
  topic: 'x-sessionizer-source-topic',
  partition: 'x-sessionizer-source-partition',
  offset: 'x-sessionizer-source-offset',
  /** Set (to the original value's size in bytes) when the message was replaced by a record of it. */
  replaced: 'x-sessionizer-replaced-bytes',
} as const;

/** The broker's default `message.max.bytes` (1 MiB + 12): used when the topic's own limit cannot be read. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** Room left in every send for the record batch header and each record's framing. */
const BATCH_OVERHEAD_BYTES = 1_024;
const RECORD_OVERHEAD_BYTES = 64;

export interface DeadLetterChunk {
  messages: Message[];
  /** How many of them replace a message too large to send as it was. */
  replaced: number;
}

/**
 * Splits rejected messages into sends that each fit `maxBytes`, replacing any message that alone
 * would not. Pure: the broker's limit comes in as a number.
 */
export function planDeadLetters(topic: string, partition: number, rejected: readonly RejectedMessage[], maxBytes: number): DeadLetterChunk[] {
  const budget = Math.max(maxBytes - BATCH_OVERHEAD_BYTES, 4_096);
  const chunks: DeadLetterChunk[] = [];
  let current: DeadLetterChunk = { messages: [], replaced: 0 };
  let currentBytes = 0;
  for (const rejection of rejected) {
    let message = deadLetterOf(topic, partition, rejection);
    let size = recordBytes(message);
    let replaced = false;
    if (size > budget) {
      message = replacementOf(topic, partition, rejection, size);
      size = recordBytes(message);
      replaced = true;
    }
    if (current.messages.length > 0 && currentBytes + size > budget) {
      chunks.push(current);
      current = { messages: [], replaced: 0 };
      currentBytes = 0;
    }
    current.messages.push(message);
    current.replaced += replaced ? 1 : 0;
    currentBytes += size;
  }
  if (current.messages.length > 0) chunks.push(current);
  return chunks;
}

function sourceHeaders(topic: string, partition: number, { message, error }: RejectedMessage): IHeaders {
  return {
    [DEAD_LETTER_HEADERS.reason]: error.message,
    [DEAD_LETTER_HEADERS.field]: error.field,
    [DEAD_LETTER_HEADERS.topic]: topic,
    [DEAD_LETTER_HEADERS.partition]: String(partition),
    [DEAD_LETTER_HEADERS.offset]: message.offset,
  };
}

function deadLetterOf(topic: string, partition: number, rejection: RejectedMessage): Message {
  const { message } = rejection;
  return {
    key: message.key,
    value: message.value,
    headers: { ...(message.headers as IHeaders | undefined), ...sourceHeaders(topic, partition, rejection) },
  };
}

/** A small record in place of a message too large to copy: where it is, how large, and why. */
function replacementOf(topic: string, partition: number, rejection: RejectedMessage, bytes: number): Message {
  const { message, error } = rejection;
  const value = JSON.stringify({
    replaced: true,
    reason: error.message.slice(0, 1_000),
    field: error.field,
    source: { topic, partition, offset: message.offset },
    original_bytes: bytes,
  });
  return {
    // A key is kept when it is small: it names the visitor the message was meant for.
    key: message.key && message.key.length <= 1_024 ? message.key : null,
    value,
    headers: { ...sourceHeaders(topic, partition, { message, error }), [DEAD_LETTER_HEADERS.replaced]: String(bytes) },
  };
}

function recordBytes(message: Message): number {
  let bytes = RECORD_OVERHEAD_BYTES + byteLength(message.key) + byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    bytes += Buffer.byteLength(name) + 8;
    for (const item of Array.isArray(value) ? value : [value]) bytes += byteLength(item as Buffer | string | null | undefined);
  }
  return bytes;
}

function byteLength(value: Buffer | string | null | undefined): number {
  if (value == null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

export class DeadLetterPublisher implements DeadLetterPort {
  private maxBytes: Promise<number> | null = null;

  constructor(
    private readonly producer: Producer,
    private readonly admin: Admin,
    private readonly deadLetterTopic: string,
  ) {}

  async plan(topic: string, partition: number, rejected: readonly RejectedMessage[]): Promise<DeadLetterChunk[]> {
    if (rejected.length === 0) return [];
    return planDeadLetters(topic, partition, rejected, await this.topicMaxBytes());
  }

  async send(chunk: DeadLetterChunk): Promise<void> {
    await this.producer.send({ topic: this.deadLetterTopic, acks: -1, messages: chunk.messages });
  }

  /** The dead-letter topic's `max.message.bytes`, read once; the broker default when it cannot be read. */
  private topicMaxBytes(): Promise<number> {
    this.maxBytes ??= this.admin
      .describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: this.deadLetterTopic, configNames: ['max.message.bytes'] }],
      })
      .then((result) => {
        const entry = result.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes');
        const value = Number(entry?.configValue);
        return Number.isFinite(value) && value > 0 ? value : DEFAULT_MAX_MESSAGE_BYTES;
      })
      .catch(() => {
        // Asked again next time: the topic may not exist yet, or the broker was unreachable.
        this.maxBytes = null;
        return DEFAULT_MAX_MESSAGE_BYTES;
      });
    return this.maxBytes;
  }
}
