/**
 * Server-side enrichment of collected events: device type, OS and browser from the User-Agent
 * (and Client Hints), country / region / city from the client IP, and whether the client is a
 * known bot. What the message itself says wins; enrichment only fills what is missing. The IP
 * and the User-Agent are read here and never copied into the event.
 */
import { isbot } from 'isbot';
import { parseUserAgent, type ClientHints } from '../events/user-agent';
import type { Geo, GeoLookup } from './geo';

export interface ClientInfo {
  ip: string;
  userAgent: string;
  hints?: ClientHints;
}

export interface Enrichment {
  device: { type?: string; os?: string; browser?: string };
  geo: Geo;
  isBot: boolean;
}

/** Known crawlers, monitors and headless tools: `isbot`'s maintained list, or what bowser calls a bot. */
export function isKnownBot(userAgent: string): boolean {
  return userAgent !== '' && isbot(userAgent);
}

/**
 * Parsed User-Agents (with their hints), most recent last. Real traffic repeats a few hundred
 * User-Agents, and parsing one costs more than the rest of the enrichment together.
 */
const DEVICE_CACHE_SIZE = 2_000;
const deviceCache = new Map<string, { device: Enrichment['device']; isBot: boolean }>();

function deviceOf(userAgent: string, hints: ClientHints | undefined): { device: Enrichment['device']; isBot: boolean } {
  const key = hints ? `${userAgent}\n${JSON.stringify(hints)}` : userAgent;
  const cached = deviceCache.get(key);
  if (cached) return cached;
  const ua = parseUserAgent(userAgent, hints);
  const parsed = { device: { type: ua.deviceType, os: ua.os, browser: ua.browser }, isBot: ua.isBot || isKnownBot(userAgent) };
  if (deviceCache.size >= DEVICE_CACHE_SIZE) deviceCache.delete(deviceCache.keys().next().value as string);
  deviceCache.set(key, parsed);
  return parsed;
}

export function enrichmentOf(client: ClientInfo, geo: GeoLookup | null): Enrichment {
  const { device, isBot } = deviceOf(client.userAgent, client.hints);
  return { device: { ...device }, geo: geo ? geo.lookup(client.ip) : {}, isBot };
}

type Fields = Record<string, unknown>;

/** Fills the event's missing `device` and `geo` values from the enrichment (in place). */
export function applyEnrichment(event: Fields, enrichment: Enrichment): void {
  fill(event, 'device', enrichment.device);
  fill(event, 'geo', { ...enrichment.geo });
}

function fill(event: Fields, field: 'device' | 'geo', values: { [key: string]: string | undefined }): void {
  const current = event[field] && typeof event[field] === 'object' ? { ...(event[field] as Fields) } : {};
  let changed = false;
  for (const [key, value] of Object.entries(values)) {
    if (value && (current[key] === undefined || current[key] === '')) {
      current[key] = value;
      changed = true;
    }
  }
  if (changed) event[field] = current;
}
