/**
 * RowBinary bytes for each column type we use, checked against the format's definition
 * (LEB128 string lengths, little-endian integers, DateTime64(3) as Int64 milliseconds), and the
 * typed error a value that does not fit its column raises.
 */
import { RowEncodingError } from '../../../src/errors';
import { RowBinaryBatch, RowBinaryEncoder, type Column } from '../../../src/clickhouse/row-binary';

const hex = (buffer: Buffer) => buffer.toString('hex');

function encodeOne(type: Column['type'], value: unknown): string {
  return hex(new RowBinaryEncoder('t', [{ name: 'c', type }]).encodeArrays([[value]]));
}

describe('RowBinaryEncoder', () => {
  it('writes strings as a LEB128 byte length and the UTF-8 bytes', () => {
    expect(encodeOne('String', '')).toBe('00');
    expect(encodeOne('String', 'ab')).toBe('026162');
    expect(encodeOne('String', 'é')).toBe('02c3a9');
    expect(encodeOne('String', '🚀')).toBe('04f09f9a80');
    expect(encodeOne('String', 'x'.repeat(127)).slice(0, 2)).toBe('7f');
    expect(encodeOne('String', 'x'.repeat(128)).slice(0, 4)).toBe('8001');
    expect(encodeOne('String', 'é'.repeat(64)).slice(0, 4)).toBe('8001'); // 64 characters, 128 bytes
    expect(encodeOne('String', 'x'.repeat(20_000)).slice(0, 6)).toBe('a09c01');
    expect(encodeOne('String', 'x'.repeat(20_000))).toHaveLength(2 * (3 + 20_000));
  });

  it('writes integers little-endian in their width', () => {
    expect(encodeOne('UInt8', 255)).toBe('ff');
    expect(encodeOne('Int8', -1)).toBe('ff');
    expect(encodeOne('UInt32', 0x01020304)).toBe('04030201');
    expect(encodeOne('Int32', -2)).toBe('feffffff');
    expect(encodeOne('UInt64', 2 ** 32 + 1)).toBe('0100000001000000');
    expect(encodeOne('Int64', -1)).toBe('ffffffffffffffff');
    expect(encodeOne('Int64', '42')).toBe('2a00000000000000');
    expect(encodeOne('Int64', '9007199254740993')).toBe('0100000000002000');
    expect(encodeOne('Int64', '-9223372036854775808')).toBe('0000000000000080');
  });

  it('writes DateTime64(3) as Int64 epoch milliseconds, from a number or ISO text', () => {
    const ms = Date.parse('2024-05-01T10:00:00.123Z');
    const expected = Buffer.alloc(8);
    expected.writeBigInt64LE(BigInt(ms));
    expect(encodeOne("DateTime64(3, 'UTC')", ms)).toBe(hex(expected));
    expect(encodeOne("DateTime64(3, 'UTC')", '2024-05-01T10:00:00.123Z')).toBe(hex(expected));
    expect(encodeOne("DateTime64(3, 'UTC')", '2024-05-01T10:00:00.124Z')).not.toBe(hex(expected));
  });

  it('encodes object rows by column name and array rows by position, identically', () => {
    const columns = [
      { name: 'a', type: 'String' },
      { name: 'b', type: 'UInt32' },
    ] as const;
    const encoder = new RowBinaryEncoder('t', columns);
    const rows = Array.from({ length: 5_000 }, (_, i) => ({ a: `row ${i} ✓`, b: i })); // grows the buffer
    const batch = new RowBinaryBatch(encoder, 16);
    for (const row of rows) batch.add(row);
    expect(batch.count).toBe(rows.length);
    expect(batch.bytes().equals(encoder.encodeArrays(rows.map((r) => [r.a, r.b])))).toBe(true);
    expect(encoder.columnList()).toBe('(a, b)');
  });

  it('refuses values that do not fit their column, naming table and column', () => {
    const cases: Array<[Column['type'], unknown]> = [
      ['String', undefined],
      ['String', 5],
      ['UInt8', 256],
      ['UInt8', 1.5],
      ['Int8', -129],
      ['UInt32', -1],
      ['UInt64', '5'],
      ['Int64', '9223372036854775808'],
      ['Int64', '12abc'],
      ["DateTime64(3, 'UTC')", 'yesterday'],
      ["DateTime64(3, 'UTC')", null],
    ];
    for (const [type, value] of cases) {
      expect(() => encodeOne(type, value)).toThrow(RowEncodingError);
    }
    expect(() => new RowBinaryEncoder('sessions', [{ name: 'views', type: 'UInt32' }]).encodeArrays([[-3]])).toThrow('sessions.views: cannot write -3 as UInt32');
    expect(() => new RowBinaryEncoder('sessions', [{ name: 'views', type: 'UInt32' }]).encodeArrays([[1, 2]])).toThrow(RowEncodingError);
  });
});
