/**
 * Refusing inputs that are not UTF-8 text (src/commands/input-file.ts) and cutting over-long
 * lines as they stream (src/io/line-limit.ts).
 */
import { Readable } from 'node:stream';
import { describeNonText, firstInvalidUtf8 } from '../../../src/commands/input-file';
import { LineLengthLimiter } from '../../../src/io/line-limit';
import { readLines } from '../../../src/io/line-reader';

describe('describeNonText', () => {
  it('accepts UTF-8 text, including a multi-byte character cut at the end of a partial read', () => {
    expect(describeNonText(Buffer.from('{"a":"São Paulo ✓ 😀"}\n'), true)).toBeNull();
    const cut = Buffer.from('ok é').subarray(0, 4); // first byte of "é" only
    expect(describeNonText(cut, false)).toBeNull();
    expect(describeNonText(cut, true)).toMatch(/not UTF-8 text \(byte 0xc3 at byte 3, line 1\)/);
  });

  it('names gzip, zip, UTF-16, binary and Latin-1 inputs without quoting their bytes', () => {
    expect(describeNonText(Buffer.from([0x1f, 0x8b, 8, 0, 0x1b, 0x5b]), false)).toMatch(/gzip-compressed/);
    expect(describeNonText(Buffer.from('PK\x03\x04rest', 'latin1'), false)).toMatch(/zip archive/);
    expect(describeNonText(Buffer.from('\ufeff{}', 'utf16le'), false)).toMatch(/UTF-16/);
    expect(describeNonText(Buffer.from('{"a":1}\n\x00\x01\x1b[31m', 'latin1'), false)).toBe('binary data (a NUL byte at byte 8), not NDJSON text');
    const latin1 = describeNonText(Buffer.from('{"city":"ok"}\n{"city":"S\xe3o \x1b[2J"}\n', 'latin1'), true) as string;
    expect(latin1).toMatch(/not UTF-8 text \(byte 0xe3 at byte 24, line 2\)/);
    expect(latin1).not.toMatch(/[\x00-\x1f\x7f-\xff]/); // eslint-disable-line no-control-regex
  });

  it('firstInvalidUtf8 rejects overlongs, surrogates and code points past U+10FFFF', () => {
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xc0, 0x80]))).toBe(1);
    expect(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBe(0);
    expect(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0);
    expect(firstInvalidUtf8(Buffer.from('€𝄞', 'utf8'))).toBe(-1);
    expect(firstInvalidUtf8(Buffer.from([0xe2, 0x82]), false)).toBe(-1);
    expect(firstInvalidUtf8(Buffer.from([0xe2, 0x41]), false)).toBe(0);
  });
});

describe('LineLengthLimiter', () => {
  async function lines(chunks: Buffer[], max: number): Promise<string[]> {
    const out: string[] = [];
    for await (const line of readLines(Readable.from(chunks).pipe(new LineLengthLimiter(max)))) out.push(line);
    return out;
  }

  it('passes short lines unchanged and cuts a long one to max + 1 bytes, across chunk borders', async () => {
    const chunks = [Buffer.from('ab\nabcdefghij'), Buffer.from('klmnop'), Buffer.from('qr\nxyz\n'), Buffer.from('tail')];
    expect(await lines(chunks, 5)).toEqual(['ab', 'abcdef', 'xyz', 'tail']);
    expect(await lines([Buffer.from('12345\n123456\n')], 5)).toEqual(['12345', '123456']);
  });

  it('streams a 100 MB line without holding it: memory stays flat and the line comes out cut', async () => {
    const chunk = Buffer.alloc(1 << 20, 0x61);
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.from('{"ok":1}\n');
      for (let i = 0; i < 100; i++) yield chunk;
      yield Buffer.from('\n{"ok":2}\n');
    }
    const limiter = new LineLengthLimiter(64 * 1024);
    const before = process.memoryUsage();
    const seen: number[] = [];
    let peak = 0;
    for await (const line of readLines(Readable.from(source()).pipe(limiter))) {
      seen.push(line.length);
      const now = process.memoryUsage();
      peak = Math.max(peak, now.heapUsed + now.arrayBuffers - before.heapUsed - before.arrayBuffers);
    }
    expect(seen).toEqual([8, 64 * 1024 + 1, 8]);
    expect(limiter.cut).toBe(1);
    expect(peak).toBeLessThan(40 * 1024 * 1024);
  });
});
