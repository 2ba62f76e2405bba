/**
 * Events are UTF-8 only: the check itself against the WHATWG fatal decoder, and each path
 * that turns bytes into an event (worker batches, parseEvent on a Buffer, file lines in both
 * recompute paths, produce's line classification) rejecting what is not UTF-8 with a reason
 * that says where and never quotes the bytes.
 */
import { Readable } from 'node:stream';
import { classifyLine } from '../../../src/commands/produce-command';
import { InvalidEventError } from '../../../src/errors';
import { parseEvent, parseEventFields } from '../../../src/events/parse-event';
import { describeInvalidUtf8, invalidUtf8Offset, isUtf8, printable } from '../../../src/events/utf8';
import { NotUtf8Line, readLines, type Line } from '../../../src/io/line-reader';
import { parseBatch } from '../../../src/recompute/pipeline';
import { planBatch } from '../../../src/worker/batch-plan';

const fatal = new TextDecoder('utf-8', { fatal: true });
function fatalOk(bytes: Uint8Array): boolean {
  try {
    fatal.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const EVENT = { event_id: 'e1', type: 'page_view', timestamp: '2024-05-01T12:00:00.000Z', anonymous_id: 'a-1' };
/** A valid event whose page title holds `bytes` (raw, not escaped) in the middle of its JSON. */
function eventWith(bytes: number[]): Buffer {
  const [head, tail] = JSON.stringify({ ...EVENT, page: { title: '@@' } }).split('@@') as [string, string];
  return Buffer.concat([Buffer.from(head), Buffer.from(bytes), Buffer.from(tail)]);
}

const BAD_SEQUENCES: Array<[string, number[]]> = [
  ['a stray continuation byte', [0x80]],
  ['Latin-1 é', [0xe9]],
  ['an overlong slash', [0xc0, 0xaf]],
  ['an overlong 3-byte form', [0xe0, 0x80, 0xaf]],
  ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
  ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ['a sequence cut short', [0xe2, 0x82]],
  ['0xff', [0xff]],
];

describe('the UTF-8 check', () => {
  it('agrees with the fatal decoder on random bytes, and finds the first bad byte', () => {
    let seed = 7;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) & 0xff;
    for (let n = 0; n < 5_000; n++) {
      const length = 1 + (random() % 12);
      // Mostly ASCII and well-formed pieces, some random bytes: both verdicts get exercised.
      const parts: number[] = [];
      for (let i = 0; i < length; i++) {
        const r = random();
        if (r < 128) parts.push(0x61);
        else if (r < 180) parts.push(...Buffer.from('é€😀'.charAt(r % 3 === 2 ? 2 : r % 2)));
        else parts.push(random());
      }
      const bytes = Uint8Array.from(parts);
      const ok = fatalOk(bytes);
      expect(isUtf8(bytes)).toBe(ok);
      const at = invalidUtf8Offset(bytes);
      expect(at < 0).toBe(ok);
      // Everything before the reported byte decodes; the reported byte starts no valid sequence.
      if (!ok) expect(fatalOk(bytes.subarray(0, at))).toBe(true);
    }
  });

  it.each(BAD_SEQUENCES)('rejects %s, naming the byte and its offset', (_, bytes) => {
    const message = Buffer.concat([Buffer.from('ab'), Buffer.from(bytes), Buffer.from('cd')]);
    expect(invalidUtf8Offset(message)).toBe(2);
    expect(describeInvalidUtf8(message)).toBe(`not valid UTF-8 (byte 0x${(bytes[0] as number).toString(16)} at offset 2)`);
  });

  it('escapes control characters and U+FFFD for printing', () => {
    expect(printable('a\u0000b\u001b[31m\ufffd\u2028')).toBe('a\\u0000b\\u001b[31m\\ufffd\\u2028');
    expect(printable('plain é € 😀')).toBe('plain é € 😀');
  });
});

describe('every path rejects what is not UTF-8', () => {
  const valid = eventWith([...Buffer.from('Grüße €')]);

  it('parseEvent and parseEventFields on bytes', () => {
    expect(parseEvent(valid).ok).toBe(true);
    for (const [, bytes] of BAD_SEQUENCES) {
      const bad = eventWith(bytes);
      const parsed = parseEvent(bad);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.error.message).toMatch(/^not valid UTF-8 \(byte 0x[0-9a-f]{2} at offset \d+\)$/);
      expect(parseEventFields(bad).ok).toBe(false);
    }
  });

  it("the worker's batch planning: rejected with the reason, the rest planned", () => {
    const bad = eventWith([0xc3, 0x28]);
    const plan = planBatch(
      [
        { offset: '0', key: null, value: valid },
        { offset: '1', key: null, value: bad },
        { offset: '2', key: null, value: Buffer.from(JSON.stringify({ ...EVENT, event_id: 'e2' })) },
      ],
      -Infinity,
      Infinity,
    );
    expect(plan.rejected).toHaveLength(1);
    expect(plan.rejected[0]?.message.offset).toBe('1');
    expect(plan.rejected[0]?.error).toBeInstanceOf(InvalidEventError);
    expect(plan.rejected[0]?.error.message).toBe(`not valid UTF-8 (byte 0xc3 at offset ${bad.indexOf(0xc3)})`);
    expect(plan.byUser.get('a-1')?.map((p) => p.event.eventId)).toEqual(['e1', 'e2']);
  });

  it('reading lines: a NotUtf8Line in its place, whatever the chunking', async () => {
    const input = Buffer.concat([valid, Buffer.from('\n'), eventWith([0xe9]), Buffer.from('\r\n\n'), Buffer.from('{"x":"é"}')]);
    for (const size of [1, 2, 3, 7, 64, input.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < input.length; i += size) chunks.push(input.subarray(i, i + size));
      const lines: Line[] = [];
      for await (const line of readLines(Readable.from(chunks))) lines.push(line);
      expect(lines).toHaveLength(4);
      expect(lines[0]).toBe(valid.toString());
      expect(lines[1]).toBeInstanceOf(NotUtf8Line);
      expect((lines[1] as NotUtf8Line).reason).toMatch(/^not valid UTF-8 \(byte 0xe9 at offset \d+\)$/);
      expect((lines[1] as NotUtf8Line).lossyText).toContain('\ufffd');
      expect(lines[2]).toBe('');
      expect(lines[3]).toBe('{"x":"é"}');
    }
  });

  it("recompute's threaded batches: the bad line invalid by its number, the others parsed", () => {
    const batch = Buffer.concat([valid, Buffer.from('\n'), eventWith([0xff]), Buffer.from('\r\n'), Buffer.from(JSON.stringify({ ...EVENT, event_id: 'e3' }))]);
    const ids: string[] = [];
    const result = parseBatch(batch, (event) => ids.push(event.eventId));
    expect(result.lines).toBe(3);
    expect(result.events).toBe(2);
    expect(ids).toEqual(['e1', 'e3']);
    expect(result.invalid).toEqual([{ index: 2, line: expect.stringContaining('\ufffd'), field: '', reason: expect.stringMatching(/^not valid UTF-8 \(byte 0xff/) }]);
  });

  it("produce's line classification: skipped with the reason", () => {
    expect(classifyLine(NotUtf8Line.of(eventWith([0x80])))).toEqual({ skip: expect.stringMatching(/^not valid UTF-8 \(byte 0x80 at offset \d+\)$/) });
    expect(classifyLine(valid.toString())).toEqual({ key: 'a-1', value: valid.toString() });
  });

  it('JSON errors never echo control characters of the input', () => {
    const parsed = parseEvent('\u0000\u001b[2J{"a":');
    expect(parsed.ok).toBe(false);
    // eslint-disable-next-line no-control-regex
    if (!parsed.ok) expect(parsed.error.message).not.toMatch(/[\u0000-\u001f]/);
    const verdict = classifyLine('\u001b[2J not json');
    // eslint-disable-next-line no-control-regex
    expect('skip' in (verdict ?? {}) && /[\u0000-\u001f]/.test((verdict as { skip: string }).skip)).toBe(false);
  });
});
