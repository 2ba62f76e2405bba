/**
 * Synthetic but realistic product traffic, reproducible from a seed: visitors on the web and in
 * apps, server events and store purchases, visits separated by pauses (some close to the
 * session timeout), logins mid-visit, campaigns and referrers, key events, a share of exact
 * duplicates, and bounded disorder. Events come out in arrival order, generated on the fly
 * (memory grows with users, not events), so a million-event file costs little to make.
 *
 * Events are as rich as real traffic (about 500 bytes of JSON on average): web and app events
 * carry the page or screen, the device and the geo; a visit that came from a campaign carries it
 * on every event (as SDKs that keep the campaign in their context do); about a third of events
 * carry `properties` (products, amounts, form fields, plans). Those details come from a second
 * random stream, so users, times, visits, logins, duplicates and disorder (and so every session)
 * are the same as the lean events of earlier versions gave for a seed.
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
const TITLES: Record<string, string> = {
  '/': 'Shop Example — Everyday things, delivered tomorrow',
  '/pricing': 'Pricing and plans | Shop Example',
  '/docs': 'Documentation | Shop Example Help Center',
  '/docs/start': 'Getting started in five minutes | Shop Example Help Center',
  '/blog': 'Blog | Shop Example',
  '/blog/launch': 'We are launching next-day delivery in 40 new cities | Shop Example Blog',
  '/signup': 'Create your account | Shop Example',
  '/checkout': 'Checkout — secure payment | Shop Example',
  '/account': 'Your account | Shop Example',
  '/search': 'Search results | Shop Example',
};
const PRODUCTS = [
  { product_id: 'sku-10482', name: 'Merino crew sweater', category: 'apparel/knitwear', price: 89.9 },
  { product_id: 'sku-22017', name: 'Ceramic pour-over set', category: 'home/kitchen', price: 42.5 },
  { product_id: 'sku-30991', name: 'Trail running shoe', category: 'sport/footwear', price: 129 },
  { product_id: 'sku-41263', name: 'Linen duvet cover, queen', category: 'home/bedroom', price: 119 },
  { product_id: 'sku-57730', name: 'Noise-cancelling headphones', category: 'electronics/audio', price: 249.99 },
];
const SEARCHES = ['running shoes', 'gift for dad', 'duvet queen linen', 'headphones wireless', 'coffee'];
const PLANS = ['free', 'starter', 'team', 'enterprise'];
const STORES = ['berlin-mitte-01', 'sf-union-square', 'paris-marais-02', 'sao-paulo-paulista'];
const SCREENS = ['Home', 'Feed', 'Detail', 'Cart', 'Settings', 'Profile'];
const REFERRERS = ['https://www.google.com/search?q=x', 'https://news.ycombinator.com/', 'https://t.co/abc', 'https://www.bing.com/'];
const CAMPAIGNS: ReadonlyArray<Record<string, string>> = [
  { source: 'newsletter', medium: 'email', name: 'spring' },
  { source: 'google', medium: 'cpc', name: 'brand', term: 'sessions' },
  { source: 'facebook', medium: 'social', name: 'launch', content: 'video' },
];
/** Campaigns of visits that carry one from the second random stream (see the file's comment). */
const MORE_CAMPAIGNS: ReadonlyArray<Record<string, string>> = [
  ...CAMPAIGNS,
  { source: 'google', medium: 'cpc', name: 'generic_shoes_2024', term: 'running shoes', content: 'ad_group_7' },
  { source: 'instagram', medium: 'paid_social', name: 'summer_sale', content: 'carousel_3' },
  { source: 'partner-blog', medium: 'referral', name: 'affiliate_q2' },
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
  /** The current visit's campaign, carried on each of its events. */
  campaign: Record<string, string> | null;
}

/** Yields events in arrival order. */
export function* generateTraffic(options: TrafficOptions): Generator<RawEvent> {
  const rnd = seededRandom(options.seed ?? 1);
  // The details of an event (see the file's comment) draw from their own stream.
  const detail = seededRandom(((options.seed ?? 1) ^ 0x5bd1e995) >>> 0);
  const pickDetail = <T>(items: readonly T[]): T => items[Math.floor(detail() * items.length)] as T;
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
      campaign: null,
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
    if (firstOfVisitEvent) v.campaign = null;
    if (v.channel === 'web') {
      const path = pick(PAGES);
      event.type = rnd() < 0.8 ? 'page_view' : pick(['click', 'scroll', 'form_submit']);
      const page: Record<string, unknown> = { url: `https://shop.example${path}?v=1`, title: TITLES[path] ?? path, ...(firstOfVisitEvent && rnd() < 0.3 ? { referrer: pick(REFERRERS) } : {}) };
      event.page = page;
      if (rnd() < 0.5) page.path = path;
      if (firstOfVisitEvent && rnd() < 0.25) v.campaign = pick(CAMPAIGNS);
      else if (firstOfVisitEvent && detail() < 0.6) v.campaign = pickDetail(MORE_CAMPAIGNS);
      if (v.campaign) {
        event.campaign = v.campaign;
        page.url = `https://shop.example${path}?utm_source=${v.campaign.source}&utm_medium=${v.campaign.medium}&utm_campaign=${v.campaign.name}`;
      }
      event.device = v.device;
      event.geo = v.geo;
      if (detail() < 0.35) event.properties = webProperties(path);
    } else if (v.channel === 'app') {
      event.type = rnd() < 0.7 ? 'screen_view' : 'tap';
      event.name = pick(SCREENS);
      // A phone's app runs on the phone's OS; a visitor drawn with a computer has the app on the
      // phone that goes with it (no "mobile" on macOS). No random draw, so sessions stay the same.
      event.device = { type: 'mobile', os: mobileOs(v.device.os), app_version: '3.2.1' };
      event.geo = v.geo;
      if (firstOfVisitEvent && detail() < 0.3) v.campaign = pickDetail(MORE_CAMPAIGNS);
      if (v.campaign) event.campaign = v.campaign;
      if (detail() < 0.4) event.properties = { screen_class: `${event.name as string}ViewController`, build: 3021, dark_mode: detail() < 0.3, ...(detail() < 0.5 ? { product: pickDetail(PRODUCTS) } : {}) };
    } else if (v.channel === 'server') {
      event.type = pick(['api_call', 'email_sent', 'subscription_renewed']);
      event.properties = { plan: pickDetail(PLANS), request_id: `req_${Math.floor(detail() * 1e12).toString(36)}`, amount_cents: Math.floor(detail() * 20_000), currency: 'EUR' };
    } else {
      event.type = 'purchase';
      event.geo = { country: v.geo.country, city: v.geo.city };
      const product = pickDetail(PRODUCTS);
      const quantity = 1 + Math.floor(detail() * 3);
      event.properties = { store_id: pickDetail(STORES), till: 1 + Math.floor(detail() * 6), items: [{ ...product, quantity }], total: Math.round(product.price * quantity * 100) / 100, currency: 'EUR', payment: detail() < 0.7 ? 'card' : 'cash' };
    }
    if (rnd() < 0.03) event.key_event = true;
    if (event.key_event && event.properties === undefined) event.properties = { value: Math.round(detail() * 50_000) / 100, currency: 'EUR' };
    if (rnd() < (options.invalidRate ?? 0)) event.timestamp = 'not a time';
    return event;
  }

  function webProperties(path: string): Record<string, unknown> {
    const product = pickDetail(PRODUCTS);
    if (path === '/search') return { query: pickDetail(SEARCHES), results: Math.floor(detail() * 120), page: 1 };
    if (path === '/checkout') return { cart_id: `cart_${Math.floor(detail() * 1e10).toString(36)}`, products: [product], value: product.price, currency: 'EUR', step: 1 + Math.floor(detail() * 3) };
    if (path === '/signup') return { form: 'signup', fields_filled: Math.floor(detail() * 6), plan: pickDetail(PLANS) };
    return { ...product, list: 'recommended', position: 1 + Math.floor(detail() * 12), viewport: '1440x900' };
  }
}

function mobileOs(os: string): string {
  if (os === 'macOS') return 'iOS';
  if (os === 'Windows') return 'Android';
  return os;
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
