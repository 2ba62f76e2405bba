/**
 * Slow salted hashes of the dashboard's secrets (passwords, API keys, shared-link tokens), as
 * `sessionizer dashboard hash-secret` prints them and the access file stores them.
 *
 * Node's built-in scrypt (RFC 7914) rather than an argon2 package: no native build, nothing
 * to download, and scrypt is memory-hard too. The string is PHC-like and carries its own
 * parameters, so they can be raised later without breaking stored hashes:
 *
 *   $scrypt$ln=15,r=8,p=1$<salt, base64>$<hash, base64>
 *
 * ln=15 (N = 32768), r=8 costs 32 MiB and about 0.1 s per hash: cheap for one login, dear for
 * a guesser. Verification compares in constant time.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const PREFIX = '$scrypt$';
const FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;
const DEFAULT = { ln: 15, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

export interface ScryptParams {
  /** log2 of scrypt's N. */
  ln: number;
  r: number;
  p: number;
}

function scrypt(secret: string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  const N = 2 ** params.ln;
  // scrypt needs 128·N·r bytes; Node refuses above `maxmem` (32 MiB by default), so leave room.
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scryptCallback(secret.normalize('NFC'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A new hash of `secret` with a random salt. */
export async function hashSecret(secret: string, params: ScryptParams = DEFAULT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await scrypt(secret, salt, params, HASH_BYTES);
  return `${PREFIX}ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Whether `text` has the shape `hashSecret` produces (the parameters within sane bounds). */
export function isSecretHash(text: string): boolean {
  const match = FORMAT.exec(text);
  if (!match) return false;
  const [ln, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return ln >= 10 && ln <= 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16;
}

/** Whether `secret` is the one `stored` was made from. False for a malformed `stored`. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  if (!isSecretHash(stored)) return false;
  const match = FORMAT.exec(stored) as RegExpExecArray;
  const params = { ln: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  const salt = Buffer.from(match[4] as string, 'base64');
  const expected = Buffer.from(match[5] as string, 'base64');
  const actual = await scrypt(secret, salt, params, expected.length);
  return timingSafeEqual(actual, expected);
}
