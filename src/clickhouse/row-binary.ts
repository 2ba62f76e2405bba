/**
 * ClickHouse's RowBinary input format for the column types our tables use.
 *
 * Why not JSON: the worker writes every consumed event and every session state to ClickHouse.
 * Serialising those rows as JSON was the largest single cost of the worker (JSON.stringify of
 * ~600-byte rows whose `raw` column is itself JSON to escape), and parsing JSON is the largest
 * cost of an insert on the server. RowBinary is written with plain byte copies and read by
 * ClickHouse without parsing: strings are a LEB128 length and the UTF-8 bytes, numbers are
 * little-endian, `DateTime64(3)` is Int64 epoch milliseconds, `LowCardinality(String)` is sent
 * as `String`. See https://clickhouse.com/docs/interfaces/formats/RowBinary.
 */
import { RowEncodingError } from '../errors';
import { parseFormattedTimestamp } from '../events/timestamp';

/** The column types we write; `LowCardinality(String)` columns are declared `String` here. */
export type ColumnType = 'String' | 'UInt8' | 'Int8' | 'UInt32' | 'Int32' | 'UInt64' | 'Int64' | "DateTime64(3, 'UTC')";

export interface Column<Name extends string = string> {
  name: Name;
  type: ColumnType;
}

const TWO_32 = 2 ** 32;

/** An append-only byte buffer that grows by doubling. */
export class RowBinaryWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  /** The bytes written so far (a view, not a copy). */
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  string(value: string): void {
    const n = value.length;
    // Short ASCII strings (ids, names, paths, enum-like values) are most of what we write: a byte
    // loop is cheaper than Buffer#write's call overhead for them. A length below 128 is one
    // LEB128 byte.
    if (n < 128) {
      this.reserve(1 + n);
      const buffer = this.buffer;
      const start = this.length;
      let pos = start + 1;
      for (let i = 0; i < n; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) return this.utf8String(value);
        buffer[pos++] = code;
      }
      buffer[start] = n;
      this.length = pos;
      return;
    }
    this.utf8String(value);
  }

  /** A String value given as its UTF-8 bytes (a message as received): copied, never re-encoded. */
  utf8Bytes(value: Uint8Array): void {
    const bytes = value.length;
    this.reserve(10 + bytes);
    this.leb128(bytes);
    this.buffer.set(value, this.length);
    this.length += bytes;
  }

  uint8(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  int8(value: number): void {
    this.reserve(1);
    this.buffer.writeInt8(value, this.length);
    this.length += 1;
  }

  uint32(value: number): void {
    this.reserve(4);
    this.buffer.writeUInt32LE(value, this.length);
    this.length += 4;
  }

  int32(value: number): void {
    this.reserve(4);
    this.buffer.writeInt32LE(value, this.length);
    this.length += 4;
  }

  /** A safe integer as a 64-bit two's complement value (signed or unsigned alike when ≥ 0). */
  int64(value: number): void {
    this.reserve(8);
    const high = Math.floor(value / TWO_32);
    this.buffer.writeUInt32LE(value - high * TWO_32, this.length);
    this.buffer.writeInt32LE(high, this.length + 4);
    this.length += 8;
  }

  bigInt64(value: bigint): void {
    this.reserve(8);
    this.buffer.writeBigInt64LE(value, this.length);
    this.length += 8;
  }

  private utf8String(value: string): void {
    const bytes = Buffer.byteLength(value, 'utf8');
    this.reserve(10 + bytes);
    this.leb128(bytes);
    this.length += this.buffer.write(value, this.length, 'utf8');
  }

  /** A string's length prefix; the caller reserved room. */
  private leb128(length: number): void {
    let n = length;
    while (n >= 0x80) {
      this.buffer[this.length++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buffer[this.length++] = n;
  }

  private reserve(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

type Encode = (writer: RowBinaryWriter, value: unknown) => boolean;

const isInteger = (value: unknown, min: number, max: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;

/** Each encoder writes a value and returns true, or returns false (writing nothing) if it does not fit. */
const ENCODERS: Record<ColumnType, Encode> = {
  // Bytes are taken as they are: the caller has checked they are UTF-8 (a Kafka message is
  // checked before it is parsed).
  String: (w, v) => (typeof v === 'string' ? (w.string(v), true) : v instanceof Uint8Array && (w.utf8Bytes(v), true)),
  UInt8: (w, v) => isInteger(v, 0, 0xff) && (w.uint8(v), true),
  Int8: (w, v) => isInteger(v, -0x80, 0x7f) && (w.int8(v), true),
  UInt32: (w, v) => isInteger(v, 0, 0xffffffff) && (w.uint32(v), true),
  Int32: (w, v) => isInteger(v, -0x80000000, 0x7fffffff) && (w.int32(v), true),
  UInt64: (w, v) => isInteger(v, 0, Number.MAX_SAFE_INTEGER) && (w.int64(v), true),
  Int64: encodeInt64,
  "DateTime64(3, 'UTC')": encodeDateTime64,
};

/** Kafka offsets arrive as decimal strings; Int64 columns take those, numbers and bigints. */
function encodeInt64(writer: RowBinaryWriter, value: unknown): boolean {
  if (typeof value === 'string' && SHORT_DECIMAL.test(value)) value = Number(value);
  if (isInteger(value, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) {
    writer.int64(value);
    return true;
  }
  const big = typeof value === 'bigint' ? value : typeof value === 'string' && LONG_DECIMAL.test(value) ? BigInt(value) : null;
  if (big === null || big < INT64_MIN || big > INT64_MAX) return false;
  writer.bigInt64(big);
  return true;
}

/** Up to 15 digits always fit a double exactly; longer ones go through BigInt. */
const SHORT_DECIMAL = /^-?\d{1,15}$/;
const LONG_DECIMAL = /^-?\d{1,20}$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Epoch milliseconds (event rows), or the ISO-8601 text of `formatTimestamp` (session rows). */
function encodeDateTime64(writer: RowBinaryWriter, value: unknown): boolean {
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? parseFormattedTimestamp(value) : NaN;
  if (!Number.isSafeInteger(ms)) return false;
  writer.int64(ms);
  return true;
}

/** Encodes rows for one table and column list; the column's encoders are looked up once. */
export class RowBinaryEncoder<Name extends string> {
  private readonly encoders: Encode[];

  constructor(
    readonly table: string,
    readonly columns: readonly Column<Name>[],
  ) {
    this.encoders = columns.map((column) => ENCODERS[column.type]);
  }

  /** The `(a, b, c)` list for `INSERT INTO t (…) FORMAT RowBinary`. */
  columnList(): string {
    return `(${this.columns.map((c) => c.name).join(', ')})`;
  }

  /**
   * Rows as arrays in column order.
   * @param formatByte a byte written before the rows, telling this body's columns from another's
   *   (see session-sink.ts); ClickHouse is sent what follows it
   */
  encodeArrays(rows: readonly (readonly unknown[])[], formatByte?: number): Buffer {
    const writer = new RowBinaryWriter(rows.length * 256 + 1024);
    if (formatByte !== undefined) writer.uint8(formatByte);
    for (const row of rows) this.writeArray(writer, row);
    return writer.bytes();
  }

  writeObject(writer: RowBinaryWriter, row: Partial<Readonly<Record<Name, unknown>>>): void {
    const { columns, encoders } = this;
    for (let i = 0; i < columns.length; i++) {
      const name = (columns[i] as Column<Name>).name;
      if (!(encoders[i] as Encode)(writer, row[name])) this.fail(i, row[name]);
    }
  }

  writeArray(writer: RowBinaryWriter, row: readonly unknown[]): void {
    const { columns, encoders } = this;
    if (row.length !== columns.length) throw new RowEncodingError(this.table, '*', `${columns.length} values`, row);
    for (let i = 0; i < columns.length; i++) {
      if (!(encoders[i] as Encode)(writer, row[i])) this.fail(i, row[i]);
    }
  }

  private fail(index: number, value: unknown): never {
    const column = this.columns[index] as Column<Name>;
    throw new RowEncodingError(this.table, column.name, column.type, value);
  }
}

/**
 * Object rows encoded one at a time as they are made, so the objects can be collected young
 * instead of living until the whole batch is written.
 */
export class RowBinaryBatch<Name extends string> {
  private readonly writer: RowBinaryWriter;
  private rows = 0;

  /**
   * @param expectedBytes a guess of the encoded size: one allocation of about the right size
   *   instead of a series of doublings (each a copy, and each large buffer counts towards V8's
   *   external memory, whose growth triggers full garbage collections)
   */
  constructor(
    readonly encoder: RowBinaryEncoder<Name>,
    expectedBytes = 1024 * 1024,
  ) {
    this.writer = new RowBinaryWriter(expectedBytes);
  }

  add(row: Partial<Readonly<Record<Name, unknown>>>): void {
    this.encoder.writeObject(this.writer, row);
    this.rows += 1;
  }

  get count(): number {
    return this.rows;
  }

  bytes(): Buffer {
    return this.writer.bytes();
  }
}
