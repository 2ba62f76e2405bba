/**
 * User-Agent Client Hints as a browser sends them: the `Sec-CH-UA*` request headers or
 * `context.userAgentData` in the message body (what analytics.js sends from
 * `navigator.userAgentData`). Chromium browsers freeze parts of their User-Agent string; the
 * hints say what it no longer does (e.g. the real platform). Interpreting them is bowser's job;
 * here they are only taken out of the headers, which hold quoted strings in the RFC 8941 shape
 * (`"Chromium";v="124", "Not-A.Brand";v="99"`), read by the two patterns below.
 */
import type { ClientHints } from '../events/user-agent';

/** One brand of `Sec-CH-UA`: a quoted name and its `v` parameter. */
const BRAND = /"((?:[^"\\]|\\.)*)"\s*;\s*v\s*=\s*"((?:[^"\\]|\\.)*)"/g;
/** A header that is one quoted string (`Sec-CH-UA-Platform: "macOS"`). */
const QUOTED = /^\s*"((?:[^"\\]|\\.)*)"\s*$/;
const MAX_HEADER_CHARS = 512;

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function unescape(text: string): string {
  return text.replace(/\\(.)/g, '$1');
}

function stringItem(text: string | undefined): string | undefined {
  const match = text ? QUOTED.exec(text.slice(0, MAX_HEADER_CHARS)) : null;
  return match ? unescape(match[1] as string) : undefined;
}

/** Hints from request headers; undefined when the browser sent none. */
export function hintsFromHeaders(headers: Headers): ClientHints | undefined {
  const ua = header(headers, 'sec-ch-ua');
  const mobile = header(headers, 'sec-ch-ua-mobile');
  const platform = stringItem(header(headers, 'sec-ch-ua-platform'));
  if (!ua && !mobile && !platform) return undefined;
  const hints: ClientHints = {};
  if (ua) {
    const brands = [...ua.slice(0, MAX_HEADER_CHARS).matchAll(BRAND)].map((m) => ({ brand: unescape(m[1] as string), version: unescape(m[2] as string) }));
    if (brands.length > 0) hints.brands = brands;
  }
  if (mobile) hints.mobile = mobile.trim() === '?1';
  if (platform) hints.platform = platform;
  return hints;
}

/** Hints from a message's `context.userAgentData` (`{brands, mobile, platform}`), if well formed. */
export function hintsFromContext(context: unknown): ClientHints | undefined {
  if (!context || typeof context !== 'object') return undefined;
  const data = (context as Record<string, unknown>).userAgentData;
  if (!data || typeof data !== 'object') return undefined;
  const d = data as Record<string, unknown>;
  const hints: ClientHints = {};
  if (Array.isArray(d.brands)) {
    hints.brands = d.brands
      .filter((b): b is { brand: string; version?: unknown } => !!b && typeof (b as { brand?: unknown }).brand === 'string')
      .map((b) => ({ brand: b.brand, version: String(b.version ?? '') }));
  }
  if (typeof d.mobile === 'boolean') hints.mobile = d.mobile;
  if (typeof d.platform === 'string' && d.platform) hints.platform = d.platform;
  return Object.keys(hints).length > 0 ? hints : undefined;
}
