/**
 * The output shape of a session: the session fields (`SessionRecord`), plus, for the
 * `sessions` table in ClickHouse, whether the session is still open and the row version.
 */
import * as crypto from 'node:crypto';
import type { Channel } from '../events/event-schema';
import { formatTimestamp } from '../events/timestamp';
import { sessionIdText, siteOfKey, userKeyOfKey, visitorKeyOf } from '../events/visitor-key';
import type { SessionSummary } from './summary';

/** A session is engaged when it lasts this long, or has two views, or a key event. */
export const ENGAGED_DURATION_MS = 10_000;

export interface SessionRecord {
  /** The site the session belongs to (`default` for data without one). */
  site: string;
  session_id: string;
  /** The user key within the site (`anonymous_id ?? user_id`), never the visitor key. */
  user_key: string;
  anonymous_id: string;
  user_id: string;
  started_at: string;
  ended_at: string;
  duration_ms: number;
  events: number;
  views: number;
  entry_page: string;
  exit_page: string;
  source: string;
  medium: string;
  campaign: string;
  term: string;
  content: string;
  channel: Channel;
  device_type: string;
  os: string;
  browser: string;
  app_version: string;
  country: string;
  region: string;
  city: string;
  is_engaged: 0 | 1;
  is_bounce: 0 | 1;
  session_number: number;
  previous_session_id: string;
}

/** The field order of every session we print: recompute's NDJSON, reports, tests. */
export const SESSION_FIELDS: readonly (keyof SessionRecord)[] = [
  'site',
  'session_id',
  'user_key',
  'anonymous_id',
  'user_id',
  'started_at',
  'ended_at',
  'duration_ms',
  'events',
  'views',
  'entry_page',
  'exit_page',
  'source',
  'medium',
  'campaign',
  'term',
  'content',
  'channel',
  'device_type',
  'os',
  'browser',
  'app_version',
  'country',
  'region',
  'city',
  'is_engaged',
  'is_bounce',
  'session_number',
  'previous_session_id',
];

/** One state of a session as written to ClickHouse (`sign` is added by the writer). */
export interface SessionRow extends SessionRecord {
  is_open: 0 | 1;
  version: number;
}

const ONE_SHOT = typeof crypto.hash === 'function';

/**
 * `session_id` of a visitor key's session: the first 32 hex characters of SHA-256 of
 * `user_key + "|" + started_at_ms` for the site `default` (as before sites existed), of
 * `site + "|" + user_key + "|" + started_at_ms` for any other site.
 */
export function sessionIdOf(key: string, startedAtMs: number): string {
  const text = `${sessionIdText(key)}|${startedAtMs}`;
  // One-shot crypto.hash (Node ≥ 20.12) is ~3× cheaper than a Hash object; same digest (UTF-8).
  if (ONE_SHOT) return crypto.hash('sha256', text, 'hex').slice(0, 32);
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);
}

/** The visitor key (src/events/visitor-key.ts) a session row belongs to: its site and user key. */
export function visitorKeyOfRow(row: Pick<SessionRecord, 'site' | 'user_key'>): string {
  return visitorKeyOf(row.site, row.user_key);
}

/** @param key the visitor key: the row gets its site and its user key */
export function sessionRecordOf(
  key: string,
  summary: SessionSummary,
  sessionNumber: number,
  previousSessionId: string,
): SessionRecord {
  const { is_open: _open, version: _version, ...record } = sessionRowOf(key, summary, sessionNumber, previousSessionId, 0, 0);
  return record;
}

/**
 * The row of a session (`sessionRecordOf` plus `is_open` and `version`), built as one object
 * literal: the engine's hot path. Spreading a record into a row made a slow (dictionary-mode)
 * object that cost about 3 µs more per session to build and serialise. `sessionId`, when the
 * caller knows it (a stored state), saves the hash. `key` is the visitor key: for the site
 * `default` it is the user key, and splitting it makes no new string.
 */
export function sessionRowOf(
  key: string,
  summary: SessionSummary,
  sessionNumber: number,
  previousSessionId: string,
  isOpen: 0 | 1,
  version: number,
  sessionId: string = sessionIdOf(key, summary.startTs),
): SessionRow {
  const duration = summary.endTs - summary.startTs;
  const engaged = duration >= ENGAGED_DURATION_MS || summary.views >= 2 || summary.keyEvent ? 1 : 0;
  const first = summary.firsts;
  return {
    site: siteOfKey(key),
    session_id: sessionId,
    user_key: userKeyOfKey(key),
    anonymous_id: first.anonymousId?.[0] ?? '',
    user_id: summary.userId?.[0] ?? '',
    started_at: formatTimestamp(summary.startTs),
    ended_at: formatTimestamp(summary.endTs),
    duration_ms: duration,
    events: summary.events,
    views: summary.views,
    entry_page: summary.entry?.[0] ?? '',
    exit_page: summary.exit?.[0] ?? '',
    source: summary.source,
    medium: summary.medium,
    campaign: summary.campaign,
    term: summary.term,
    content: summary.content,
    channel: summary.channel,
    device_type: first.deviceType?.[0] ?? '',
    os: first.os?.[0] ?? '',
    browser: first.browser?.[0] ?? '',
    app_version: first.appVersion?.[0] ?? '',
    country: first.country?.[0] ?? '',
    region: first.region?.[0] ?? '',
    city: first.city?.[0] ?? '',
    is_engaged: engaged,
    is_bounce: engaged ? 0 : 1,
    session_number: sessionNumber,
    previous_session_id: previousSessionId,
    is_open: isOpen,
    version,
  };
}

/** The session fields only, in `SESSION_FIELDS` order (drops `is_open`, `version`, `sign`). */
export function toSessionRecord(row: SessionRecord): SessionRecord {
  // One literal (a fast object) rather than copying field by field; the order is SESSION_FIELDS'
  // (test/unit/recompute/session-row.test.ts checks it).
  return {
    site: row.site,
    session_id: row.session_id,
    user_key: row.user_key,
    anonymous_id: row.anonymous_id,
    user_id: row.user_id,
    started_at: row.started_at,
    ended_at: row.ended_at,
    duration_ms: row.duration_ms,
    events: row.events,
    views: row.views,
    entry_page: row.entry_page,
    exit_page: row.exit_page,
    source: row.source,
    medium: row.medium,
    campaign: row.campaign,
    term: row.term,
    content: row.content,
    channel: row.channel,
    device_type: row.device_type,
    os: row.os,
    browser: row.browser,
    app_version: row.app_version,
    country: row.country,
    region: row.region,
    city: row.city,
    is_engaged: row.is_engaged,
    is_bounce: row.is_bounce,
    session_number: row.session_number,
    previous_session_id: row.previous_session_id,
  };
}

/** Same session state, ignoring the version: nothing needs writing. */
export function sameContent(a: SessionRow, b: SessionRecord & { is_open: 0 | 1 }): boolean {
  if (a.is_open !== b.is_open) return false;
  for (const field of SESSION_FIELDS) if (a[field] !== b[field]) return false;
  return true;
}
