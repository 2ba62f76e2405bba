/**
 * Synthetic but realistic product traffic, reproducible from a seed: visitors on the web and in
 * apps, server events and store purchases, visits separated by pauses (some close to the
 * session timeout), logins mid-visit, campaigns and referrers, key events, a share of exact
 * duplicates, and bounded disorder. Events come out in arrival order, generated on the fly
 * (memory grows with users, not events), so a million-event file costs little to make.
 */

export interface TrafficOptions {
  users: number;
  /** Visits per user, on average (at least 1). */
  visitsPerUser?: number;
  /** Events per visit, on average (at least 1). */
  eventsPerVisit?: number;
  /** Event time of the first visits. */
  startMs: number;
  /** Visits start within [startMs, startMs + spanMs). */
  spanMs: number;
  /** Session timeout the traffic is shaped around (some pauses land just below or above it). */
  timeoutMs?: number;
  /** Share of events sent twice, identically. */
  duplicateRate?: number;
  /** Events arrive up to this much event time out of order. */
  disorderMs?: number;
  /** Share of events with a stray invalid field (for dead-letter tests); 0 by default. */
  invalidRate?: number;
  seed?: number;
  /** Prefix of user ids and event ids, so several runs can share a topic. */
  idPrefix?: string;
}

export type RawEvent = Record<string, unknown>;

/** mulberry32: small, fast, good enough for test traffic, and the same on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PAGES = ['/', '/pricing', '/docs', '/docs/start', '/blog', '/blog/launch', '/signup', '/checkout', '/account', '/search'];
const SCREENS = ['Home', 'Feed', 'Detail', 'Cart', 'Settings', 'Profile'];
const REFERRERS = ['https://www.google.com/search?q=x', 'https://news.ycombinator.com/', 'https://t.co/abc', 'https://www.bing.com/'];
const CAMPAIGNS = [
  { source: 'newsletter', medium: 'email', name: 'spring' },
  { source: 'google', medium: 'cpc', name: 'brand', term: 'sessions' },
  { source: 'facebook', medium: 'social', name: 'launch', content: 'video' },
];
const DEVICES = [
  { type: 'desktop', os: 'macOS', browser: 'Safari' },
  { type: 'desktop', os: 'Windows', browser: 'Chrome' },
  { type: 'mobile', os: 'iOS', browser: 'Safari' },
  { type: 'mobile', os: 'Android', browser: 'Chrome' },
];
const GEOS = [
  { country: 'DE', region: 'BE', city: 'Berlin' },
  { country: 'US', region: 'CA', city: 'San Francisco' },
  { country: 'FR', region: 'IDF', city: 'Paris' },
  { country: 'BR', region: 'SP', city: 'São Paulo' },
];

interface Visitor {
  index: number;
  channel: 'web' | 'app' | 'server' | 'store';
  anonymousId: string;
  userId: string;
  loggedIn: boolean;
  visitsLeft: number;
  eventsLeft: number;
  nextTs: number;
  eventSeq: number;
  device: (typeof DEVICES)[number];
  geo: (typeof GEOS)[number];
}

/** Yields events in arrival order. */
export function* generateTraffic(options: TrafficOptions): Generator<RawEvent> {
  const rnd = seededRandom(options.seed ?? 1);
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const visits = Math.max(1, options.visitsPerUser ?? 3);
  const perVisit = Math.max(1, options.eventsPerVisit ?? 6);
  const prefix = options.idPrefix ?? '';
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const around = (mean: number) => Math.max(1, Math.round(mean * (0.25 + rnd() * 1.5)));

  // Visitors ordered by the time of their next event (a binary heap on nextTs).
  const heap: Visitor[] = [];
  for (let i = 0; i < options.users; i++) {
    const r = rnd();
    const channel = r < 0.6 ? 'web' : r < 0.85 ? 'app' : r < 0.95 ? 'server' : 'store';
    const userId = `${prefix}user-${i}`;
    heapPush(heap, {
      index: i,
      channel,
      // server and store events often know only the user id
      anonymousId: channel === 'server' || channel === 'store' ? (rnd() < 0.3 ? `${prefix}anon-${i}` : '') : `${prefix}anon-${i}`,
      userId,
      loggedIn: channel === 'server' || channel === 'store',
      visitsLeft: around(visits),
      eventsLeft: around(perVisit),
      nextTs: options.startMs + Math.floor(rnd() * options.spanMs),
      eventSeq: 0,
      device: pick(DEVICES),
      geo: pick(GEOS),
    });
  }

  // Disorder: hold events back by a random delay and release them in arrival order.
  const delayed: Array<{ arrival: number; event: RawEvent }> = [];
  const disorder = options.disorderMs ?? 0;
  const emit = function* (event: RawEvent, ts: number): Generator<RawEvent> {
    delayed.push({ arrival: ts + (disorder > 0 ? Math.floor(rnd() * disorder) : 0), event });
    let i = delayed.length - 1;
    while (i > 0 && (delayed[i - 1] as { arrival: number }).arrival > (delayed[i] as { arrival: number }).arrival) {
      [delayed[i - 1], delayed[i]] = [delayed[i] as (typeof delayed)[number], delayed[i - 1] as (typeof delayed)[number]];
      i--;
    }
    while (delayed.length > 0 && (delayed[0] as { arrival: number }).arrival <= ts - disorder) yield (delayed.shift() as { event: RawEvent }).event;
  };

  const firstOfVisit = new Set<number>(Array.from({ length: options.users }, (_, i) => i));
  while (heap.length > 0) {
    const v = heapPop(heap);
    const ts = v.nextTs;
    const first = firstOfVisit.has(v.index);
    firstOfVisit.delete(v.index);
    if (!v.loggedIn && v.anonymousId && rnd() < 0.08) v.loggedIn = true; // login mid-visit
    const event = makeEvent(v, ts, first);
    yield* emit(event, ts);
    if ((options.duplicateRate ?? 0) > 0 && rnd() < (options.duplicateRate ?? 0)) yield* emit({ ...event }, ts);

    v.eventsLeft -= 1;
    if (v.eventsLeft > 0) {
      v.nextTs = ts + Math.floor(rnd() < 0.03 ? timeoutMs * (0.9 + rnd() * 0.2) : 1_000 + rnd() * 120_000);
      heapPush(heap, v);
    } else if (--v.visitsLeft > 0) {
      v.eventsLeft = around(perVisit);
      v.nextTs = ts + timeoutMs + Math.floor(rnd() * 6 * 3_600_000);
      firstOfVisit.add(v.index);
      heapPush(heap, v);
    }
  }
  for (const { event } of delayed) yield event;

  function makeEvent(v: Visitor, ts: number, firstOfVisitEvent: boolean): RawEvent {
    v.eventSeq += 1;
    const event: RawEvent = {
      event_id: `${prefix}e-${v.index}-${v.eventSeq}`,
      timestamp: rnd() < 0.5 ? new Date(ts).toISOString() : ts,
      channel: v.channel,
    };
    if (v.anonymousId) event.anonymous_id = v.anonymousId;
    if (v.loggedIn || !v.anonymousId) event.user_id = v.userId;
    if (v.channel === 'web') {
      const path = pick(PAGES);
      event.type = rnd() < 0.8 ? 'page_view' : pick(['click', 'scroll', 'form_submit']);
      event.page = { url: `https://shop.example${path}?v=1`, title: path, ...(firstOfVisitEvent && rnd() < 0.3 ? { referrer: pick(REFERRERS) } : {}) };
      if (rnd() < 0.5) (event.page as Record<string, unknown>).path = path;
      if (firstOfVisitEvent && rnd() < 0.25) event.campaign = pick(CAMPAIGNS);
      event.device = v.device;
      event.geo = v.geo;
    } else if (v.channel === 'app') {
      event.type = rnd() < 0.7 ? 'screen_view' : 'tap';
      event.name = pick(SCREENS);
      event.device = { type: 'mobile', os: v.device.os, app_version: '3.2.1' };
      event.geo = v.geo;
    } else if (v.channel === 'server') {
      event.type = pick(['api_call', 'email_sent', 'subscription_renewed']);
    } else {
      event.type = 'purchase';
      event.geo = { country: v.geo.country, city: v.geo.city };
    }
    if (rnd() < 0.03) event.key_event = true;
    if (rnd() < (options.invalidRate ?? 0)) event.timestamp = 'not a time';
    return event;
  }
}

function heapPush(heap: Visitor[], v: Visitor): void {
  heap.push(v);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if ((heap[parent] as Visitor).nextTs <= v.nextTs) break;
    heap[i] = heap[parent] as Visitor;
    i = parent;
  }
  heap[i] = v;
}

function heapPop(heap: Visitor[]): Visitor {
  const top = heap[0] as Visitor;
  const last = heap.pop() as Visitor;
  if (heap.length === 0) return top;
  heap[0] = last;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let m = i;
    if (l < heap.length && (heap[l] as Visitor).nextTs < (heap[m] as Visitor).nextTs) m = l;
    if (r < heap.length && (heap[r] as Visitor).nextTs < (heap[m] as Visitor).nextTs) m = r;
    if (m === i) break;
    [heap[i], heap[m]] = [heap[m] as Visitor, heap[i] as Visitor];
    i = m;
  }
  return top;
}
