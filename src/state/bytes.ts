/**
 * A minimal byte writer and reader for the binary state format (codec.ts): unsigned and
 * zigzag-signed varints (LEB128, exact up to 2^53), and strings with a one-varint header that
 * says how they are stored:
 *
 *   header & 3 = 0  UTF-8 bytes follow, `header >> 2` of them;
 *   header & 3 = 1  the string at index `header >> 2` of the string table (constants, then
 *                   every string written before in the same value with `intern`);
 *   header & 3 = 2  a lowercase canonical UUID (8-4-4-4-12 hex digits): its 16 bytes follow;
 *   header & 3 = 3  lowercase hex of even length: `header >> 2` bytes follow.
 *
 * A value the writer cannot represent (a number that is not a safe integer) throws
 * `Unrepresentable`; the codec then falls back to its JSON form.
 */

export class Unrepresentable extends Error {}

/** Strings every value's table starts with. Append only: their indexes are part of the format. */
export const STRING_CONSTANTS: readonly string[] = ['web', 'app', 'server', 'store', '(direct)', '(none)', 'referral', '/', 'desktop', 'mobile', 'tablet'];

export class ByteWriter {
  buf: Buffer;
  pos = 0;
  /** Strings interned since `reset`, after the constants. */
  private readonly added = new Map<string, number>();

  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Starts a new value: position 0, the string table back to the constants. */
  reset(): void {
    this.pos = 0;
    this.added.clear();
  }

  /** A copy of what was written since `reset`. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** A big-endian unsigned 32-bit integer (fixed width, so Lua can read it in place). */
  uint32(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Unrepresentable(`not a uint32: ${n}`);
    this.room(4);
    this.buf.writeUInt32BE(n, this.pos);
    this.pos += 4;
  }

  uint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Unrepresentable(`not an unsigned integer: ${n}`);
    this.room(8);
    const buf = this.buf;
    if (n < 0x80000000) {
      while (n >= 0x80) {
        buf[this.pos++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
    } else {
      while (n >= 0x80) {
        buf[this.pos++] = (n % 0x80) | 0x80;
        n = Math.floor(n / 0x80);
      }
    }
    buf[this.pos++] = n;
  }

  /** Zigzag: 0, -1, 1, -2 … as 0, 1, 2, 3 … */
  int(n: number): void {
    if (!Number.isSafeInteger(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER / 2) throw new Unrepresentable(`not an integer: ${n}`);
    this.uint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  /** A string; `intern` adds it to the table, so the next equal one is a reference. */
  string(s: string, intern: boolean): void {
    const length = s.length;
    if (length === 0) {
      this.byte(0);
      return;
    }
    if (intern) {
      const index = CONSTANT_INDEX.get(s) ?? this.added.get(s);
      if (index !== undefined) {
        this.uint(index * 4 + 1);
        return;
      }
      this.added.set(s, STRING_CONSTANTS.length + this.added.size);
    }
    if (length === 36 && isUuid(s)) {
      this.byte(2);
      this.room(16);
      this.hexBytes(s, 0, 8);
      this.hexBytes(s, 9, 13);
      this.hexBytes(s, 14, 18);
      this.hexBytes(s, 19, 23);
      this.hexBytes(s, 24, 36);
      return;
    }
    if (length >= 16 && length % 2 === 0 && isHex(s, 0, length)) {
      this.uint((length / 2) * 4 + 3);
      this.room(length / 2);
      this.hexBytes(s, 0, length);
      return;
    }
    const bytes = Buffer.byteLength(s, 'utf8');
    this.uint(bytes * 4);
    this.room(bytes);
    this.pos += this.buf.write(s, this.pos, bytes, 'utf8');
  }

  private hexBytes(s: string, from: number, to: number): void {
    const buf = this.buf;
    for (let i = from; i < to; i += 2) buf[this.pos++] = (hexValue(s.charCodeAt(i)) << 4) | hexValue(s.charCodeAt(i + 1));
  }
}

export class ByteReader {
  pos: number;
  /** Strings interned since the start, after the constants. */
  private readonly added: string[] = [];

  constructor(
    readonly buf: Buffer,
    start = 0,
  ) {
    this.pos = start;
  }

  byte(): number {
    if (this.pos >= this.buf.length) throw new RangeError('state value ends early');
    return this.buf[this.pos++] as number;
  }

  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new RangeError('state value ends early');
    const n = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return n;
  }

  uint(): number {
    const buf = this.buf;
    let result = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= buf.length) throw new RangeError('state value ends early');
      const b = buf[this.pos++] as number;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 0x80;
      if (scale > 2 ** 56) throw new RangeError('varint too long');
    }
  }

  int(): number {
    const z = this.uint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  string(intern: boolean): string {
    const header = this.uint();
    const tag = header & 3;
    const n = (header - tag) / 4;
    if (tag === 1) {
      const found = n < STRING_CONSTANTS.length ? STRING_CONSTANTS[n] : this.added[n - STRING_CONSTANTS.length];
      if (found === undefined) throw new RangeError(`string reference ${n} out of range`);
      return found;
    }
    if (tag === 0 && n === 0) return '';
    const bytes = tag === 2 ? 16 : n;
    const end = this.pos + bytes;
    if (end > this.buf.length) throw new RangeError('state value ends early');
    let s: string;
    if (tag === 0) {
      s = this.buf.toString('utf8', this.pos, end);
    } else if (tag === 2) {
      const h = this.buf.toString('hex', this.pos, end);
      s = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    } else {
      s = this.buf.toString('hex', this.pos, end);
    }
    this.pos = end;
    if (intern) this.added.push(s);
    return s;
  }

  get done(): boolean {
    return this.pos === this.buf.length;
  }
}

const CONSTANT_INDEX: ReadonlyMap<string, number> = new Map(STRING_CONSTANTS.map((s, i) => [s, i]));

function hexValue(code: number): number {
  return code <= 57 ? code - 48 : code - 87;
}

/** Lowercase hex digits only, from `from` to `to`. */
function isHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

function isUuid(s: string): boolean {
  return (
    s.charCodeAt(8) === 45 &&
    s.charCodeAt(13) === 45 &&
    s.charCodeAt(18) === 45 &&
    s.charCodeAt(23) === 45 &&
    isHex(s, 0, 8) &&
    isHex(s, 9, 13) &&
    isHex(s, 14, 18) &&
    isHex(s, 19, 23) &&
    isHex(s, 24, 36)
  );
}
