/**
 * The login cookie's value: a self-contained signed token, so any replica behind a balancer
 * accepts it with nothing stored anywhere.
 *
 *   v1.<payload: base64url JSON {e: email, x: expiry ms, p: password fingerprint}>.<HMAC-SHA256, base64url>
 *
 * The expiry is inside the signed payload (a cookie's own Max-Age is only a hint to the
 * browser). The fingerprint is a short hash of the account's stored password hash: changing
 * the password in the access file logs out every session of that account.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

const VERSION = 'v1';

export interface SessionClaims {
  email: string;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
  /** `passwordFingerprint` of the account's password hash when the token was made. */
  fingerprint: string;
}

export function passwordFingerprint(passwordHash: string): string {
  return createHash('sha256').update(passwordHash).digest('base64url').slice(0, 12);
}

function sign(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(`${VERSION}.${payload}`).digest('base64url');
}

export function signSessionToken(secret: string, claims: SessionClaims): string {
  const payload = Buffer.from(JSON.stringify({ e: claims.email, x: claims.expiresAt, p: claims.fingerprint })).toString('base64url');
  return `${VERSION}.${payload}.${sign(secret, payload)}`;
}

/** The claims of a genuine, unexpired token; null for anything else. */
export function verifySessionToken(secret: string, token: string, now: number): SessionClaims | null {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) return null;
  const [, payload, signature] = parts as [string, string, string];
  const expected = Buffer.from(sign(secret, payload));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const { e, x, p } = (body ?? {}) as { e?: unknown; x?: unknown; p?: unknown };
  if (typeof e !== 'string' || typeof x !== 'number' || typeof p !== 'string') return null;
  if (x <= now) return null;
  return { email: e, expiresAt: x, fingerprint: p };
}
