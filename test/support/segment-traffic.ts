/**
 * Segment Spec messages for tests, made from the synthetic traffic of src/loadgen/traffic.ts:
 * every own-format event becomes the Segment call a real SDK would send for it (page, screen,
 * track; plus identify and alias calls around logins), with each of the timestamp forms
 * (timestamp; originalTimestamp/sentAt/receivedAt from a device whose clock is off; receivedAt
 * only), campaigns both in `context.campaign` and as `utm_*` in the page URL, user agents to
 * parse, and a share of invalid messages. Reproducible from a seed.
 */
import { seededRandom, type RawEvent } from '../../src/loadgen/traffic';

export const KEY_EVENT_NAMES = ['Order Completed', 'Signed Up'];

const USER_AGENTS: Record<string, string> = {
  Safari:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15',
  Chrome: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
};

const INVALID: ReadonlyArray<(id: string) => unknown> = [
  (id) => ({ type: 'track', messageId: id, anonymousId: 'x', timestamp: '2024-05-01T00:00:00Z' }), // no event name
  (id) => ({ type: 'purchase', messageId: id, anonymousId: 'x', timestamp: '2024-05-01T00:00:00Z' }),
  (id) => ({ type: 'page', messageId: id, timestamp: '2024-05-01T00:00:00Z' }), // no id
  (id) => ({ type: 'page', messageId: id, anonymousId: 'x' }), // no time at all
  () => ({ type: 'page', anonymousId: 'x', timestamp: '2024-05-01T00:00:00Z' }), // no messageId
  () => 'not json',
];

export interface SegmentMessageOut {
  /** The Kafka key a Segment destination would use (the user key of the mapped event). */
  key: string;
  value: string;
  valid: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One Segment message per event (some with an identify or alias call after), and invalid ones at `invalidRate`. */
export function toSegmentMessages(events: readonly RawEvent[], seed: number, invalidRate = 0): SegmentMessageOut[] {
  const rnd = seededRandom(seed);
  const out: SegmentMessageOut[] = [];
  // A duplicate event is sent again as the very same message(s), as an SDK's retry would be:
  // two different messages with one messageId would make "the first" depend on arrival order.
  const sent = new Map<string, SegmentMessageOut[]>();
  for (const e of events) {
    const again = sent.get(String(e.event_id));
    if (again) {
      out.push(...again);
      continue;
    }
    const start = out.length;
    if (rnd() < invalidRate) {
      const make = INVALID[Math.floor(rnd() * INVALID.length)] as (id: string) => unknown;
      const bad = make(`bad-${String(e.event_id)}`);
      out.push({ key: 'bad', value: typeof bad === 'string' ? bad : JSON.stringify(bad), valid: false });
    }
    const key = String(e.anonymous_id || e.user_id);
    const message = toSegment(e, rnd);
    out.push({ key, value: JSON.stringify(message), valid: true });
    if (e.anonymous_id && e.user_id && rnd() < 0.1) {
      // A login seen from the SDK: identify, and sometimes alias (previousId = the device id).
      const follow: Record<string, unknown> =
        rnd() < 0.5
          ? { type: 'identify', anonymousId: e.anonymous_id, userId: e.user_id, traits: { plan: 'pro' } }
          : { type: 'alias', previousId: e.anonymous_id, userId: e.user_id };
      out.push({ key, value: JSON.stringify({ ...follow, messageId: `${String(e.event_id)}-id`, ...times(timeOf(e) + 1, rnd) }), valid: true });
    }
    sent.set(String(e.event_id), out.slice(start).filter((m) => m.valid));
  }
  return out;
}

function timeOf(e: RawEvent): number {
  return typeof e.timestamp === 'number' ? e.timestamp : Date.parse(String(e.timestamp));
}

/** One of Segment's ways to say when: each one maps back to exactly `ms`. */
function times(ms: number, rnd: () => number): Record<string, string> {
  const r = rnd();
  if (r < 0.4) return { timestamp: iso(ms) };
  if (r < 0.8) {
    // The device clock is off by up to ±1 day; it sent the event a few seconds later.
    const skew = Math.floor((rnd() - 0.5) * 2 * 86_400_000);
    const delay = Math.floor(rnd() * 10_000);
    return { originalTimestamp: iso(ms + skew), sentAt: iso(ms + skew + delay), receivedAt: iso(ms + delay) };
  }
  return { receivedAt: iso(ms) };
}

function toSegment(e: RawEvent, rnd: () => number): Record<string, unknown> {
  const page = e.page as Record<string, string> | undefined;
  const device = e.device as Record<string, string> | undefined;
  const geo = e.geo as Record<string, string> | undefined;
  const campaign = e.campaign as Record<string, string> | undefined;
  const m: Record<string, unknown> = { messageId: e.event_id, ...times(timeOf(e), rnd) };
  if (e.anonymous_id) m.anonymousId = e.anonymous_id;
  if (e.user_id) m.userId = e.user_id;
  const properties: Record<string, unknown> = {};
  if (e.type === 'page_view') {
    m.type = 'page';
    if (page?.title) m.name = page.title;
  } else if (e.type === 'screen_view') {
    m.type = 'screen';
    m.name = e.name;
  } else {
    m.type = 'track';
    m.event = e.key_event && rnd() < 0.5 ? (KEY_EVENT_NAMES[Math.floor(rnd() * 2)] as string) : String(e.name ?? e.type);
    if (e.key_event && m.event !== KEY_EVENT_NAMES[0] && m.event !== KEY_EVENT_NAMES[1]) properties.key_event = true;
  }
  if (e.key_event && m.type !== 'track') properties.key_event = true;
  // Channels in each of the three ways the mapping reads them.
  const channel = String(e.channel);
  const how = rnd();
  const context: Record<string, unknown> = {};
  if (channel === 'store' || how < 0.3) context.channel = channel;
  else if (how < 0.7) m.channel = { web: 'browser', app: 'mobile', server: 'server' }[channel];
  if (page) {
    let url = page.url as string;
    if (campaign && rnd() < 0.5) {
      const utm = new URLSearchParams({ utm_source: campaign.source ?? '', utm_medium: campaign.medium ?? '', utm_campaign: campaign.name ?? '' });
      url += `&${utm.toString()}`;
    } else if (campaign) {
      context.campaign = campaign;
    }
    const where = { ...page, url };
    // A page call may carry its page in properties instead of context.page.
    if (m.type === 'page' && rnd() < 0.5) Object.assign(properties, where);
    else context.page = where;
  }
  if (device) {
    if (device.browser && USER_AGENTS[device.browser] && rnd() < 0.7) context.userAgent = USER_AGENTS[device.browser];
    if (device.type) context.device = { type: device.type };
    if (device.os) context.os = { name: device.os };
    if (device.app_version) context.app = { version: device.app_version, build: '321' };
  }
  if (geo) context.location = { ...geo, ...(rnd() < 0.2 ? { country: 'Germany' } : {}) };
  if (Object.keys(context).length > 0) m.context = context;
  if (Object.keys(properties).length > 0) m.properties = properties;
  return m;
}
