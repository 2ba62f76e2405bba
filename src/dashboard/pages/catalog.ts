/**
 * What a site's page shows, as data: the top cards (Stats API metric names, labels, formats) and
 * the breakdown panels with their tabs (Stats API dimension, URL filter key, CSV file name).
 * A new card or tab is one entry here.
 */

export type MetricFormat = 'count' | 'decimal' | 'percent' | 'duration';

export interface CardMetric {
  /** As the Stats API names it. */
  name: string;
  label: string;
  format: MetricFormat;
  /** A fall is good news (bounce rate). */
  lowerIsBetter?: boolean;
}

export const CARD_METRICS: readonly CardMetric[] = [
  { name: 'visitors', label: 'Unique visitors', format: 'count' },
  { name: 'visits', label: 'Sessions', format: 'count' },
  { name: 'pageviews', label: 'Page views', format: 'count' },
  { name: 'views_per_visit', label: 'Views per session', format: 'decimal' },
  { name: 'bounce_rate', label: 'Bounce rate', format: 'percent', lowerIsBetter: true },
  { name: 'engaged_rate', label: 'Engaged rate', format: 'percent' },
  { name: 'visit_duration', label: 'Avg. duration', format: 'duration' },
  { name: 'conversions', label: 'Conversions', format: 'count' },
];

export const CARD_METRIC_NAMES = CARD_METRICS.map((m) => m.name);
export const DEFAULT_METRIC = 'visitors';

/** Each breakdown row's figures: visitors and sessions. */
export const ROW_METRICS = ['visitors', 'visits'] as const;

export interface PanelTab {
  id: string;
  label: string;
  /** Stats API dimension. */
  dimension: string;
  /** URL filter key a click on a row adds. */
  filterKey: string;
  /** Column heading of the row names. */
  heading: string;
  /** Name of this tab's file in the zip export (Plausible's names where it has one). */
  file: string;
  /**
   * Not a breakdown of sessions: the person metrics (identified people on one or several device
   * types). Its rows are groups of people, which filter nothing (`dimension` and `filterKey` "").
   */
  people?: true;
}

export interface Panel {
  id: string;
  title: string;
  tabs: readonly PanelTab[];
}

export const PANELS: readonly Panel[] = [
  {
    id: 'acquisition',
    title: 'Acquisition',
    tabs: [
      { id: 'channels', label: 'Channels', dimension: 'visit:channel', filterKey: 'channel', heading: 'Channel', file: 'channels.csv' },
      { id: 'sources', label: 'Sources', dimension: 'visit:source', filterKey: 'source', heading: 'Source', file: 'sources.csv' },
      { id: 'mediums', label: 'Mediums', dimension: 'visit:utm_medium', filterKey: 'utm_medium', heading: 'Medium', file: 'utm_mediums.csv' },
      { id: 'campaigns', label: 'Campaigns', dimension: 'visit:utm_campaign', filterKey: 'utm_campaign', heading: 'Campaign', file: 'utm_campaigns.csv' },
    ],
  },
  {
    id: 'pages',
    title: 'Pages',
    tabs: [
      { id: 'entry', label: 'Entry pages', dimension: 'visit:entry_page', filterKey: 'entry_page', heading: 'Entry page', file: 'entry_pages.csv' },
      { id: 'exit', label: 'Exit pages', dimension: 'visit:exit_page', filterKey: 'exit_page', heading: 'Exit page', file: 'exit_pages.csv' },
      { id: 'top', label: 'Top pages', dimension: 'event:page', filterKey: 'page', heading: 'Page', file: 'pages.csv' },
    ],
  },
  {
    id: 'locations',
    title: 'Locations',
    tabs: [
      { id: 'countries', label: 'Countries', dimension: 'visit:country', filterKey: 'country', heading: 'Country', file: 'countries.csv' },
      { id: 'regions', label: 'Regions', dimension: 'visit:region', filterKey: 'region', heading: 'Region', file: 'regions.csv' },
      { id: 'cities', label: 'Cities', dimension: 'visit:city', filterKey: 'city', heading: 'City', file: 'cities.csv' },
    ],
  },
  {
    id: 'devices',
    title: 'Devices',
    tabs: [
      { id: 'devices', label: 'Device types', dimension: 'visit:device', filterKey: 'screen', heading: 'Device type', file: 'devices.csv' },
      { id: 'browsers', label: 'Browsers', dimension: 'visit:browser', filterKey: 'browser', heading: 'Browser', file: 'browsers.csv' },
      { id: 'os', label: 'OS', dimension: 'visit:os', filterKey: 'os', heading: 'Operating system', file: 'operating_systems.csv' },
    ],
  },
  {
    id: 'entry_points',
    title: 'Entry points',
    tabs: [
      { id: 'entry_points', label: 'Entry points', dimension: 'visit:entry_point', filterKey: 'entry_point', heading: 'Entry point', file: 'entry_points.csv' },
    ],
  },
  {
    id: 'people',
    title: 'People',
    tabs: [
      { id: 'visitor_type', label: 'New and returning', dimension: 'visit:visitor_type', filterKey: 'visitor_type', heading: 'Visitors', file: 'visitor_types.csv' },
      { id: 'cross_device', label: 'Cross-device', dimension: '', filterKey: '', heading: 'Identified people', file: 'cross_device.csv', people: true },
    ],
  },
  {
    id: 'key_events',
    title: 'Key events',
    tabs: [
      { id: 'goals', label: 'Key events', dimension: 'event:goal', filterKey: 'goal', heading: 'Key event', file: 'conversions.csv' },
      { id: 'events', label: 'All events', dimension: 'event:name', filterKey: 'event', heading: 'Event', file: 'events.csv' },
    ],
  },
];

/** The tab a panel shows: the one named in the URL, else its first. */
export function activeTab(panel: Panel, tabs: Readonly<Record<string, string>>): PanelTab {
  const wanted = tabs[panel.id];
  return panel.tabs.find((t) => t.id === wanted) ?? (panel.tabs[0] as PanelTab);
}

export function findTab(panelId: string, tabId: string): PanelTab | undefined {
  return PANELS.find((p) => p.id === panelId)?.tabs.find((t) => t.id === tabId);
}
