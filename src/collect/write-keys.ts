/**
 * Which site a request is for: Segment's write key, sent as the HTTP Basic user (password empty),
 * as SDKs do, or as `writeKey` in the JSON body, as Segment also accepts (a browser's
 * `navigator.sendBeacon` cannot set headers, so the first-party script uses the body).
 */
export interface Site {
  writeKey: string;
  siteId: string;
}

/** The write key of an `Authorization: Basic base64(key:)` header, or null. */
export function writeKeyOfHeader(authorization: string | undefined): string | null {
  if (!authorization) return null;
  const match = /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(authorization);
  if (!match) return null;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const key = colon < 0 ? decoded : decoded.slice(0, colon);
  return key === '' ? null : key;
}

export function siteOf(keys: ReadonlyMap<string, string>, authorization: string | undefined, body: unknown): Site | null {
  const key = writeKeyOfHeader(authorization) ?? writeKeyOfBody(body);
  if (key === null) return null;
  const siteId = keys.get(key);
  return siteId === undefined ? null : { writeKey: key, siteId };
}

function writeKeyOfBody(body: unknown): string | null {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return null;
  const key = (body as Record<string, unknown>).writeKey;
  return typeof key === 'string' && key !== '' ? key : null;
}
