/**
 * Sites, and the one key every per-visitor rule runs on.
 *
 * A site is the unit whose data belongs together and apart from all others. Every rule that was
 * per `user_key` (duplicates, sessions, numbering, late merges, identities, people) is per
 * `(site, user_key)`. The code carries that pair as ONE opaque string, the visitor key, made
 * here and only here, exactly as it used to carry `user_key`:
 *
 * - site `default`: the visitor key IS the user key. Redis states, idle records and session
 *   ids written before sites existed stay valid with no recalculation.
 * - any other site s: `s + "\u0000" + user_key`. A site name never holds U+0000 and an event id
 *   may not (validation refuses it), so the key splits back without ambiguity, and no key of one
 *   site can equal a key of another.
 *
 * Session ids follow the same pair: `user_key|started` for `default` (unchanged), and
 * `site|user_key|started` for any other site (see `sessionIdText`).
 */

/** The site of an event that names none, and of all data from before sites existed. */
export const DEFAULT_SITE = 'default';

/** 1–64 characters of `[a-z0-9._-]`, starting with a letter or a digit. */
export const SITE_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Between a site and a user key inside a visitor key. */
const SEPARATOR = '\u0000';

/** Whether a value is a valid site name. */
export function isValidSite(value: string): boolean {
  return SITE_PATTERN.test(value);
}

/** The visitor key of `user_key` in `site`. */
export function visitorKeyOf(site: string, userKey: string): string {
  return site === DEFAULT_SITE ? userKey : `${site}${SEPARATOR}${userKey}`;
}

/** Whether a visitor key is of the site `default` (it is then the user key itself). */
export function isDefaultSiteKey(key: string): boolean {
  return key.indexOf(SEPARATOR) < 0;
}

/** The two halves of a visitor key. */
export function splitVisitorKey(key: string): { site: string; userKey: string } {
  const i = key.indexOf(SEPARATOR);
  if (i < 0) return { site: DEFAULT_SITE, userKey: key };
  return { site: key.slice(0, i), userKey: key.slice(i + 1) };
}

/** The site of a visitor key. */
export function siteOfKey(key: string): string {
  const i = key.indexOf(SEPARATOR);
  return i < 0 ? DEFAULT_SITE : key.slice(0, i);
}

/** The user key (the event's `anonymous_id ?? user_id`) of a visitor key. */
export function userKeyOfKey(key: string): string {
  const i = key.indexOf(SEPARATOR);
  return i < 0 ? key : key.slice(i + 1);
}

/**
 * The text whose SHA-256 gives a session id, before `"|" + started_at_ms`:
 * `user_key` for the site `default`, `site|user_key` for any other.
 */
export function sessionIdText(key: string): string {
  const i = key.indexOf(SEPARATOR);
  return i < 0 ? key : `${key.slice(0, i)}|${key.slice(i + 1)}`;
}

/**
 * The order of visitor keys: by site, then by user key, each by UTF-16 code units (as `<`).
 * Output sorted by it is sorted by `site`, then `user_key`. Two keys of the site `default` (no
 * separator, the common case) compare as plain strings, with no new string made.
 */
export function compareVisitorKeys(a: string, b: string): number {
  if (a === b) return 0;
  const i = a.indexOf(SEPARATOR);
  const j = b.indexOf(SEPARATOR);
  if (i < 0 && j < 0) return a < b ? -1 : 1;
  const siteA = i < 0 ? DEFAULT_SITE : a.slice(0, i);
  const siteB = j < 0 ? DEFAULT_SITE : b.slice(0, j);
  if (siteA !== siteB) return siteA < siteB ? -1 : 1;
  const userA = i < 0 ? a : a.slice(i + 1);
  const userB = j < 0 ? b : b.slice(j + 1);
  return userA < userB ? -1 : userA > userB ? 1 : 0;
}
