import { InvalidEventError } from '../../../src/errors';
import { DEAD_LETTER_HEADERS, planDeadLetters } from '../../../src/kafka/dead-letter';
import type { RejectedMessage } from '../../../src/worker/batch-plan';

function rejected(offset: number, bytes: number): RejectedMessage {
  return { message: { offset: String(offset), key: Buffer.from(`k${offset}`), value: Buffer.alloc(bytes, 0x61) }, error: new InvalidEventError('', 'not valid JSON') };
}

function size(message: { key?: Buffer | string | null; value: Buffer | string | null; headers?: object }): number {
  return JSON.stringify(message.headers ?? {}).length + (message.key?.length ?? 0) + (message.value?.length ?? 0);
}

describe('planDeadLetters', () => {
  const limit = 1_048_588;

  it('keeps every message, in order, in sends that each fit the topic limit', () => {
    const input = Array.from({ length: 30 }, (_, i) => rejected(i, 100_000));
    const chunks = planDeadLetters('events', 3, input, limit);
    expect(chunks.length).toBeGreaterThan(2);
    const offsets = chunks.flatMap((c) => c.messages.map((m) => (m.headers as Record<string, string>)[DEAD_LETTER_HEADERS.offset]));
    expect(offsets).toEqual(input.map((r) => r.message.offset));
    for (const chunk of chunks) expect(chunk.messages.reduce((n, m) => n + size(m as never), 0)).toBeLessThan(limit);
    expect(chunks.every((c) => c.replaced === 0)).toBe(true);
  });

  it('replaces a message too large to send by a record of where it is and why', () => {
    const chunks = planDeadLetters('events', 3, [rejected(7, 10), rejected(8, 1_100_000), rejected(9, 10)], limit);
    const messages = chunks.flatMap((c) => c.messages);
    expect(messages).toHaveLength(3);
    expect(chunks.reduce((n, c) => n + c.replaced, 0)).toBe(1);
    const replacement = messages[1] as { value: string; headers: Record<string, string> };
    expect(JSON.parse(replacement.value)).toEqual({
      replaced: true,
      reason: 'not valid JSON',
      field: '',
      source: { topic: 'events', partition: 3, offset: '8' },
      original_bytes: expect.any(Number),
    });
    expect(Number(replacement.headers[DEAD_LETTER_HEADERS.replaced])).toBeGreaterThan(1_100_000);
    expect(replacement.headers[DEAD_LETTER_HEADERS.reason]).toBe('not valid JSON');
    expect((messages[0] as { value: Buffer }).value.length).toBe(10);
  });
});
