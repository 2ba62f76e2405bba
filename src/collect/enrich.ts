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

export function enrichmentOf(client: ClientInfo, geo: GeoLookup | null): Enrichment {
  const ua = parseUserAgent(client.userAgent, client.hints);
  return {
    device: { type: ua.deviceType, os: ua.os, browser: ua.browser },
    geo: geo ? geo.lookup(client.ip) : {},
    isBot: ua.isBot || isKnownBot(client.userAgent),
  };
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
