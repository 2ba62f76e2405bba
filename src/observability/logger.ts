/**
 * Structured JSON logs (pino). A logged config, error or message never carries a credential:
 *
 * - values under a key that names a secret (`password`, `secret`, `token`, `authorization`, …)
 *   are replaced by `[redacted]` at any depth, not only at the paths `redact` lists;
 * - user info in URLs (`http://user:pass@host`, `redis://:pass@host`) is stripped from every
 *   string, including error messages and the log message itself;
 * - the secret values themselves (from configuration: `secretsOf(config)`) are replaced
 *   wherever they appear, so an error that quotes a password does not leak it either.
 *
 * Scrubbing walks each logged object, which is fine for the worker: it logs per batch or per
 * event of note, never per message.
 */
import pino, { type Logger } from 'pino';
import type { Config } from '../config';

export const REDACTED = '[redacted]';

/** Kept for the common shapes; the scrubber below covers every depth. */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'sasl.password',
  'kafka.sasl.password',
  'redis.password',
  'clickhouse.password',
  'config.kafka.sasl.password',
  'config.redis.password',
  'config.clickhouse.password',
];

/** Keys whose values are secrets wherever they appear (case-insensitive). */
const SECRET_KEY = /password|passwd|^pass$|secret|token$|^authorization$|^credentials?$|api_?key$/i;
/** `scheme://userinfo@` — the user info part of a URL. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi;
/** Shorter secrets are not searched for in text: they would blank out ordinary words. */
const MIN_SECRET_LENGTH = 4;
const MAX_DEPTH = 8;

export interface LoggerOptions {
  /** Secret values to remove from any logged text (see `secretsOf`). */
  secrets?: readonly string[];
}

export function createLogger(level: string, destination?: pino.DestinationStream, options: LoggerOptions = {}): Logger {
  const scrub = scrubber(options.secrets ?? []);
  return pino(
    {
      level,
      base: { service: 'sessionizer' },
      redact: { paths: REDACTED_PATHS, censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: (object) => scrub(object) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          // `log.error(err)` and `log.error(err, 'msg')`: pino would take the message from the
          // error unscrubbed, so serialise and scrub the error here.
          const [first, ...rest] = args as unknown[];
          if (first instanceof Error) {
            const err = scrub(pino.stdSerializers.err(first)) as { message?: string };
            const message = typeof rest[0] === 'string' ? rest : [err.message ?? '', ...rest];
            return method.apply(this, [{ err }, ...message.map((a) => (typeof a === 'string' ? (scrub(a) as string) : a))] as Parameters<typeof method>);
          }
          return method.apply(this, (args as unknown[]).map((a) => (typeof a === 'string' ? scrub(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

/** The credential values of a configuration, for `createLogger`'s `secrets`. */
export function secretsOf(config: Pick<Config, 'kafka' | 'redis' | 'clickhouse'>): string[] {
  const secrets = [config.kafka.sasl?.password, config.redis.password, config.clickhouse.password];
  for (const url of [config.redis.url, config.clickhouse.url]) {
    try {
      const parsed = new URL(url);
      secrets.push(decodeURIComponent(parsed.password), parsed.password);
    } catch {
      // not a URL: nothing to take from it
    }
  }
  return [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length > 0))];
}

/** Removes user info from URLs in `text`. */
export function stripUrlCredentials(text: string): string {
  return text.replace(URL_USERINFO, '$1');
}

/** A function that returns a deep copy of a value with every credential taken out. */
export function scrubber(secrets: readonly string[]): (value: unknown) => unknown {
  const literal = [...new Set(secrets)].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  const scrubText = (text: string): string => {
    let out = stripUrlCredentials(text);
    for (const secret of literal) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  };
  const walk = (value: unknown, depth: number, seen: WeakSet<object>): unknown => {
    if (typeof value === 'string') return scrubText(value);
    if (value === null || typeof value !== 'object') return value;
    if (seen.has(value) || depth > MAX_DEPTH) return '[…]';
    seen.add(value);
    if (value instanceof Error) return walk(pino.stdSerializers.err(value), depth, seen);
    if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1, seen));
    if (Buffer.isBuffer(value) || value instanceof Date || value instanceof Map || value instanceof Set) return value;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = SECRET_KEY.test(key) && item !== undefined && item !== null && item !== '' ? REDACTED : walk(item, depth + 1, seen);
    }
    return out;
  };
  return (value) => walk(value, 0, new WeakSet());
}

export type { Logger };
