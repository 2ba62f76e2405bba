/**
 * The shipped examples (examples/events.ndjson), reproducible from a seed: a week of one shop's
 * traffic told person by person, so every view the docs show has something in it.
 *
 * Unlike src/loadgen/traffic.ts (one device per visitor, built for volume), the unit here is a
 * person: a phone, a laptop or a tablet (each with a device, OS and browser that go together),
 * maybe the shop's app, maybe an account they log in with on some devices, visits that come
 * from campaigns, referrers or nowhere, orders on the web or in the app, purchases in a store
 * (known by user id only) and server-side events. Besides the shop (events without `site`, so
 * site `default`), a blog and a help centre are sites of their own. A few people are written
 * out by hand because the docs name them: u-1042's journey (docs/queries.md) starts on the
 * phone `anon-88`, whose history the support query shows.
 *
 * Everything is built in memory (a few thousand events), sorted by time, then given a share of
 * exact duplicates and a bounded disorder of arrival, as real streams have.
 */
import { seededRandom, type RawEvent } from './traffic';

export interface ExampleOptions {
  /** Event time of the first day, 00:00 UTC. */
  startMs: number;
  days: number;
  /** People of the shop besides the hand-written ones. */
  people: number;
  /** Visitors of each extra site. */
  siteVisitors: number;
  seed: number;
  duplicateRate: number;
  disorderMs: number;
}

export const EXAMPLE_DEFAULTS: ExampleOptions = {
  startMs: Date.parse('2024-05-01T00:00:00Z'),
  days: 7,
  people: 150,
  siteVisitors: 30,
  seed: 42,
  duplicateRate: 0.01,
  disorderMs: 30_000,
};

/** Device, OS and browser that exist together; `app` devices run the shop's app. */
export interface Device {
  type: 'mobile' | 'tablet' | 'desktop';
  os: string;
  browser?: string;
  app_version?: string;
}

const PHONES: readonly Device[] = [
  { type: 'mobile', os: 'iOS', browser: 'Safari' },
  { type: 'mobile', os: 'iOS', browser: 'Chrome' },
  { type: 'mobile', os: 'Android', browser: 'Chrome' },
  { type: 'mobile', os: 'Android', browser: 'Samsung Internet' },
];
const LAPTOPS: readonly Device[] = [
  { type: 'desktop', os: 'macOS', browser: 'Safari' },
  { type: 'desktop', os: 'macOS', browser: 'Chrome' },
  { type: 'desktop', os: 'Windows', browser: 'Chrome' },
  { type: 'desktop', os: 'Windows', browser: 'Edge' },
  { type: 'desktop', os: 'Windows', browser: 'Firefox' },
  { type: 'desktop', os: 'Linux', browser: 'Firefox' },
];
const TABLETS: readonly Device[] = [
  { type: 'tablet', os: 'iPadOS', browser: 'Safari' },
  { type: 'tablet', os: 'Android', browser: 'Chrome' },
];
const APP_VERSION = '3.2.1';

const GEOS = [
  { country: 'DE', region: 'BE', city: 'Berlin', store: 'berlin-mitte-01' },
  { country: 'DE', region: 'HH', city: 'Hamburg', store: 'hamburg-jungfernstieg' },
  { country: 'FR', region: 'IDF', city: 'Paris', store: 'paris-marais-02' },
  { country: 'US', region: 'CA', city: 'San Francisco', store: 'sf-union-square' },
  { country: 'BR', region: 'SP', city: 'São Paulo', store: 'sao-paulo-paulista' },
  { country: 'GB', region: 'ENG', city: 'London', store: '' },
];

const SHOP_PAGES: Record<string, string> = {
  '/': 'Shop Example — Everyday things, delivered tomorrow',
  '/new': 'New this week | Shop Example',
  '/products/merino-sweater': 'Merino crew sweater | Shop Example',
  '/products/pour-over-set': 'Ceramic pour-over set | Shop Example',
  '/products/trail-shoe': 'Trail running shoe | Shop Example',
  '/products/headphones': 'Noise-cancelling headphones | Shop Example',
  '/search': 'Search results | Shop Example',
  '/stores': 'Find a store | Shop Example',
  '/cart': 'Your cart | Shop Example',
};
const BROWSE = Object.keys(SHOP_PAGES).filter((p) => p !== '/cart');
const PRODUCTS = [
  { product_id: 'sku-10482', name: 'Merino crew sweater', price: 89.9 },
  { product_id: 'sku-22017', name: 'Ceramic pour-over set', price: 42.5 },
  { product_id: 'sku-30991', name: 'Trail running shoe', price: 129 },
  { product_id: 'sku-57730', name: 'Noise-cancelling headphones', price: 249.99 },
];
const SCREENS = ['Home', 'Search', 'Product', 'Cart', 'Orders', 'Profile'];
const REFERRERS = ['https://www.google.com/', 'https://www.bing.com/', 'https://news.ycombinator.com/', 'https://www.reddit.com/r/BuyItForLife/'];
export const CAMPAIGNS: ReadonlyArray<Record<string, string>> = [
  { source: 'newsletter', medium: 'email', name: 'spring' },
  { source: 'google', medium: 'cpc', name: 'brand', term: 'shop example' },
  { source: 'facebook', medium: 'social', name: 'launch', content: 'video' },
  { source: 'instagram', medium: 'paid_social', name: 'summer_sale', content: 'carousel_3' },
];
const SITES = [
  { site: 'blog', host: 'blog.shop.example', pages: ['/', '/next-day-delivery-in-40-cities', '/how-we-source-merino', '/brewing-guide', '/archive'] },
  { site: 'help', host: 'help.shop.example', pages: ['/', '/returns', '/delivery-times', '/account/password', '/contact'] },
];

interface Visit {
  /** The user key's device: `undefined` for store and server visits (user id only). */
  device?: Device;
  anonymousId?: string;
  channel: 'web' | 'app' | 'store' | 'server';
  startMs: number;
  /** Events of the visit, by offset from its start. */
  steps: Step[];
}

interface Step {
  atMs: number;
  type: string;
  name?: string;
  path?: string;
  /** Sends the user id from this event on (a login), on this device for good. */
  login?: boolean;
  keyEvent?: boolean;
  properties?: Record<string, unknown>;
  campaign?: Record<string, string>;
  referrer?: string;
}

interface Person {
  userId?: string;
  geo: (typeof GEOS)[number];
  site?: string;
  host: string;
  visits: Visit[];
}

/** The example events, in arrival order. */
export function exampleEvents(options: ExampleOptions = EXAMPLE_DEFAULTS): RawEvent[] {
  const rnd = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const between = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const endMs = options.startMs + options.days * 86_400_000;
  const people: Person[] = [...castOfTheDocs(options.startMs)];

  for (let i = 0; i < options.people; i++) people.push(shopPerson(i));
  for (const site of SITES) for (let i = 0; i < options.siteVisitors; i++) people.push(siteVisitor(site, i));

  const events: Array<{ ts: number; event: RawEvent }> = [];
  let seq = 0;
  for (const person of people) {
    const loggedIn = new Set<string>();
    for (const visit of person.visits) {
      // In time order, so a login gives the user id to the events after it, not the ones before.
      for (const step of [...visit.steps].sort((a, b) => a.atMs - b.atMs)) {
        const ts = visit.startMs + step.atMs;
        if (ts >= endMs) continue;
        seq += 1;
        if (step.login && visit.anonymousId) loggedIn.add(visit.anonymousId);
        events.push({ ts, event: eventOf(person, visit, step, ts, loggedIn, seq) });
      }
    }
  }
  events.sort((a, b) => a.ts - b.ts || String(a.event.event_id).localeCompare(String(b.event.event_id)));

  // Arrival: a share sent twice, and each event up to disorderMs late.
  const arrivals: Array<{ at: number; n: number; event: RawEvent }> = [];
  for (const { ts, event } of events) {
    arrivals.push({ at: ts + Math.floor(rnd() * options.disorderMs), n: arrivals.length, event });
    if (rnd() < options.duplicateRate) arrivals.push({ at: ts + Math.floor(rnd() * options.disorderMs), n: arrivals.length, event: { ...event } });
  }
  return arrivals.sort((a, b) => a.at - b.at || a.n - b.n).map((a) => a.event);

  function eventOf(person: Person, visit: Visit, step: Step, ts: number, loggedIn: Set<string>, n: number): RawEvent {
    const event: RawEvent = {
      event_id: `e-${n}`,
      // Both timestamp forms the format allows.
      timestamp: n % 2 === 0 ? new Date(ts).toISOString() : ts,
      channel: visit.channel,
      type: step.type,
    };
    if (person.site) event.site = person.site;
    if (visit.anonymousId) event.anonymous_id = visit.anonymousId;
    if (person.userId && (!visit.anonymousId || loggedIn.has(visit.anonymousId))) event.user_id = person.userId;
    if (step.name) event.name = step.name;
    if (step.path !== undefined) {
      const query = step.campaign ? `?utm_source=${step.campaign.source}&utm_medium=${step.campaign.medium}&utm_campaign=${step.campaign.name}` : '';
      event.page = {
        url: `https://${person.host}${step.path}${query}`,
        path: step.path,
        title: SHOP_PAGES[step.path] ?? `${step.path} | ${person.host}`,
        ...(step.referrer ? { referrer: step.referrer } : {}),
      };
    }
    if (step.campaign) event.campaign = step.campaign;
    if (step.keyEvent) event.key_event = true;
    if (visit.device) event.device = visit.device;
    if (visit.channel !== 'server') event.geo = { country: person.geo.country, region: person.geo.region, city: person.geo.city };
    if (step.properties) event.properties = step.properties;
    return event;
  }

  function shopPerson(i: number): Person {
    const geo = pick(GEOS);
    const hasAccount = rnd() < 0.65;
    const person: Person = { geo, host: 'shop.example', visits: [], ...(hasAccount ? { userId: `u-${2001 + i}` } : {}) };
    const devices: Array<{ device: Device; anonymousId: string; channel: 'web' | 'app' }> = [];
    const phone = rnd() < 0.75 ? pick(PHONES) : undefined;
    if (phone) devices.push({ device: phone, anonymousId: `anon-${1000 + 3 * i}`, channel: 'web' });
    if (!phone || rnd() < 0.5) devices.push({ device: pick(LAPTOPS), anonymousId: `anon-${1001 + 3 * i}`, channel: 'web' });
    else if (rnd() < 0.15) devices.push({ device: pick(TABLETS), anonymousId: `anon-${1001 + 3 * i}`, channel: 'web' });
    // The app runs on the phone, under its own install id.
    if (phone && hasAccount && rnd() < 0.35) {
      devices.push({ device: { type: 'mobile', os: phone.os, app_version: APP_VERSION }, anonymousId: `app-${1002 + 3 * i}`, channel: 'app' });
    }
    let t = options.startMs + Math.floor(rnd() * (endMs - options.startMs) * 0.8);
    const visits = between(1, 5);
    for (let v = 0; v < visits && t < endMs; v++) {
      const r = rnd();
      if (hasAccount && v > 0 && r < 0.08 && geo.store) {
        person.visits.push(storeVisit(t, geo.store));
      } else if (hasAccount && v > 0 && r < 0.13) {
        person.visits.push({ channel: 'server', startMs: t, steps: [{ atMs: 0, type: pick(['email_sent', 'subscription_renewed']), properties: { plan: pick(['basic', 'plus']) } }] });
      } else {
        const d = pick(devices);
        person.visits.push(d.channel === 'app' ? appVisit(t, d.device, d.anonymousId) : webVisit(t, d.device, d.anonymousId, hasAccount));
      }
      const last = person.visits.at(-1) as Visit;
      t = last.startMs + (last.steps.at(-1) as Step).atMs + 31 * 60_000 + Math.floor(rnd() * 40 * 3_600_000);
    }
    return person;
  }

  function webVisit(startMs: number, device: Device, anonymousId: string, hasAccount: boolean): Visit {
    const steps: Step[] = [];
    const r = rnd();
    const campaign = r < 0.3 ? pick(CAMPAIGNS) : undefined;
    const referrer = !campaign && r < 0.55 ? pick(REFERRERS) : undefined;
    const views = rnd() < 0.35 ? 1 : between(2, 7);
    let at = 0;
    for (let k = 0; k < views; k++) {
      const path = k === 0 ? pick(['/', '/', '/new', ...BROWSE]) : pick(BROWSE);
      steps.push({ atMs: at, type: 'page_view', path, ...(k === 0 && campaign ? { campaign } : {}), ...(k === 0 && referrer ? { referrer } : {}) });
      if (hasAccount && k === 0 && rnd() < 0.4) steps.push({ atMs: at + between(5, 40) * 1000, type: 'login', path, login: true });
      at += between(8, 150) * 1000;
    }
    if (views > 2 && rnd() < 0.25) {
      const product = pick(PRODUCTS);
      steps.push({ atMs: at, type: 'page_view', path: '/cart' });
      steps.push({ atMs: at + between(30, 200) * 1000, type: 'order_completed', path: '/cart', keyEvent: true, properties: { order_id: `o-${between(10_000, 99_999)}`, revenue: product.price, currency: 'EUR', products: [product] } });
    }
    return { device, anonymousId, channel: 'web', startMs, steps };
  }

  function appVisit(startMs: number, device: Device, anonymousId: string): Visit {
    const steps: Step[] = [];
    const screens = between(1, 6);
    let at = 0;
    for (let k = 0; k < screens; k++) {
      steps.push({ atMs: at, type: 'screen_view', name: k === 0 ? 'Home' : pick(SCREENS), ...(k === 0 ? { login: true } : {}) });
      at += between(5, 90) * 1000;
    }
    if (rnd() < 0.2) steps.push({ atMs: at, type: 'order_completed', name: 'Cart', keyEvent: true, properties: { order_id: `o-${between(10_000, 99_999)}`, revenue: pick(PRODUCTS).price, currency: 'EUR' } });
    return { device, anonymousId, channel: 'app', startMs, steps };
  }

  function storeVisit(startMs: number, store: string): Visit {
    const product = pick(PRODUCTS);
    return { channel: 'store', startMs, steps: [{ atMs: 0, type: 'purchase', keyEvent: true, properties: { store_id: store, items: [{ ...product, quantity: 1 }], total: product.price, currency: 'EUR', payment: 'card' } }] };
  }

  function siteVisitor(site: (typeof SITES)[number], i: number): Person {
    const person: Person = { geo: pick(GEOS), site: site.site, host: site.host, visits: [] };
    const device = rnd() < 0.55 ? pick(PHONES) : pick(LAPTOPS);
    const anonymousId = `${site.site}-anon-${i + 1}`;
    let t = options.startMs + Math.floor(rnd() * (endMs - options.startMs) * 0.9);
    for (let v = between(1, 3); v > 0 && t < endMs; v--) {
      const referrer = rnd() < 0.5 ? pick(REFERRERS) : undefined;
      const steps: Step[] = [];
      let at = 0;
      for (let k = between(1, 4); k > 0; k--) {
        steps.push({ atMs: at, type: 'page_view', path: pick(site.pages), ...(at === 0 && referrer ? { referrer } : {}) });
        at += between(10, 240) * 1000;
      }
      person.visits.push({ device, anonymousId, channel: 'web', startMs: t, steps });
      t += at + 31 * 60_000 + Math.floor(rnd() * 48 * 3_600_000);
    }
    return person;
  }
}

/**
 * The people the docs name. u-1042: a spring newsletter click on the phone (anon-88, not logged
 * in), the laptop where they log in, the app, the phone again (now logged in), then a purchase
 * in the Berlin store two days after the first visit — the journey, the "spring, then a store
 * within a week" audience and the web → app → store channel moves of docs/queries.md. Their
 * last visit, on the laptop at the end of the week, keeps a session open when the examples are
 * sent with `--redate` (the newest event then is a minute old).
 */
function castOfTheDocs(startMs: number): Person[] {
  const day = (d: number, h: number, m = 0) => d * 86_400_000 + h * 3_600_000 + m * 60_000;
  const geo = GEOS[0] as (typeof GEOS)[number];
  const phone: Device = { type: 'mobile', os: 'iOS', browser: 'Safari' };
  const laptop: Device = { type: 'desktop', os: 'macOS', browser: 'Safari' };
  const app: Device = { type: 'mobile', os: 'iOS', app_version: APP_VERSION };
  const spring = CAMPAIGNS[0] as Record<string, string>;
  const sweater = PRODUCTS[0] as (typeof PRODUCTS)[number];
  const web = (anonymousId: string, device: Device, at: number, steps: Step[]): Visit => ({ anonymousId, device, channel: 'web', startMs: startMs + at, steps });
  return [
    {
      userId: 'u-1042',
      geo,
      host: 'shop.example',
      visits: [
        web('anon-88', phone, day(0, 8, 2), [
          { atMs: 0, type: 'page_view', path: '/new', campaign: spring, referrer: 'https://mail.example/' },
          { atMs: 40_000, type: 'page_view', path: '/products/merino-sweater' },
          { atMs: 95_000, type: 'page_view', path: '/stores' },
        ]),
        web('anon-5b1e', laptop, day(0, 12, 10), [
          { atMs: 0, type: 'page_view', path: '/' },
          { atMs: 20_000, type: 'login', path: '/', login: true },
          { atMs: 70_000, type: 'page_view', path: '/products/merino-sweater' },
          { atMs: 130_000, type: 'page_view', path: '/cart' },
        ]),
        { anonymousId: 'app-ios-9c4d', device: app, channel: 'app', startMs: startMs + day(1, 19, 30), steps: [
          { atMs: 0, type: 'screen_view', name: 'Home', login: true },
          { atMs: 30_000, type: 'screen_view', name: 'Product' },
          { atMs: 75_000, type: 'screen_view', name: 'Cart' },
        ] },
        web('anon-88', phone, day(2, 7, 45), [
          { atMs: 0, type: 'page_view', path: '/stores' },
          { atMs: 15_000, type: 'login', path: '/stores', login: true },
        ]),
        { channel: 'store', startMs: startMs + day(2, 17, 20), steps: [
          { atMs: 0, type: 'purchase', keyEvent: true, properties: { store_id: geo.store, items: [{ ...sweater, quantity: 1 }], total: sweater.price, currency: 'EUR', payment: 'card' } },
        ] },
        web('anon-88', phone, day(4, 21, 5), [{ atMs: 0, type: 'page_view', path: '/new' }]),
        web('anon-5b1e', laptop, day(6, 23, 40), [
          { atMs: 0, type: 'page_view', path: '/' },
          { atMs: 45_000, type: 'page_view', path: '/products/trail-shoe' },
          { atMs: 110_000, type: 'page_view', path: '/products/headphones' },
        ]),
      ],
    },
  ];
}
