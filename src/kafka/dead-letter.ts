/**
 * The dead-letter topic: a message that is not a valid event goes there with its original key,
 * value and headers, plus headers naming why and where it came from. It is never dropped and
 * never stops the worker. Delivery is at least once: a batch replayed after a crash may send a
 * rejected message again (consumers of the topic de-duplicate by source topic/partition/offset).
 */
import type { IHeaders, Producer } from 'kafkajs';
import type { DeadLetterPort } from '../worker/partition-processor';
import type { RejectedMessage } from '../worker/batch-plan';

export const DEAD_LETTER_HEADERS = {
  reason: 'x-sessionizer-error',
  field: 'x-sessionizer-error-field',
  topic: 'x-sessionizer-source-topic',
  partition: 'x-sessionizer-source-partition',
  offset: 'x-sessionizer-source-offset',
} as const;

export class DeadLetterPublisher implements DeadLetterPort {
  constructor(
    private readonly producer: Producer,
    private readonly deadLetterTopic: string,
  ) {}

  async publish(topic: string, partition: number, rejected: readonly RejectedMessage[]): Promise<void> {
    if (rejected.length === 0) return;
    await this.producer.send({
      topic: this.deadLetterTopic,
      acks: -1,
      messages: rejected.map(({ message, error }) => ({
        key: message.key,
        value: message.value,
        headers: {
          ...(message.headers as IHeaders | undefined),
          [DEAD_LETTER_HEADERS.reason]: error.message,
          [DEAD_LETTER_HEADERS.field]: error.field,
          [DEAD_LETTER_HEADERS.topic]: topic,
          [DEAD_LETTER_HEADERS.partition]: String(partition),
          [DEAD_LETTER_HEADERS.offset]: message.offset,
        },
      })),
    });
  }
}
