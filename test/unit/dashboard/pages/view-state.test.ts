import { CARD_METRIC_NAMES, DEFAULT_METRIC } from '../../../../src/dashboard/pages/catalog';
import { parseFilter, parseViewState, searchOf, statsFiltersOf, withFilter, withoutFilter } from '../../../../src/dashboard/pages/view-state';

const parse = (search: string) => parseViewState(search, CARD_METRIC_NAMES, DEFAULT_METRIC);

describe('the page state in the URL (Plausible form)', () => {
  it('reads period, filters, comparison, metric, interval and tabs', () => {
    const state = parse('?period=30d&f=is,source,Google&f=is_not,country,DE,FR&comparison=previous_period&metric=visits&interval=week&tab_pages=entry');
    expect(state).toEqual({
      period: '30d',
      comparison: true,
      metric: 'visits',
      interval: 'week',
      filters: [
        { operator: 'is', key: 'source', values: ['Google'] },
        { operator: 'is_not', key: 'country', values: ['DE', 'FR'] },
      ],
      tabs: { pages: 'entry' },
    });
    expect(statsFiltersOf(state)).toEqual([['is', 'visit:source', ['Google']], ['is_not', 'visit:country', ['DE', 'FR']]]);
  });

  it('splits a filter on raw commas, then decodes each part (a comma inside a value is %2C)', () => {
    expect(parseFilter('is,page,%2Fa%2Cb%20c')).toEqual({ operator: 'is', key: 'page', values: ['/a,b c'] });
    const state = withFilter(parse(''), 'utm_campaign', 'spring, "sale" & more');
    expect(parse(searchOf(state, DEFAULT_METRIC)).filters).toEqual([{ operator: 'is', key: 'utm_campaign', values: ['spring, "sale" & more'] }]);
  });

  it('drops what it does not understand instead of passing it on', () => {
    const state = parse('?period=forever&f=is,secret_column,x&f=drop,source,x&f=is,source&metric=sum(password)&interval=second');
    expect(state).toEqual({ period: '7d', comparison: false, metric: DEFAULT_METRIC, filters: [], tabs: {} });
    expect(parse('?period=custom&from=2026-02-30&to=2026-03-01').period).toBe('7d');
    expect(parse('?period=custom&from=2026-03-05&to=2026-03-01').period).toBe('7d');
    expect(parse('?period=custom&from=2026-03-01&to=2026-03-05')).toMatchObject({ period: 'custom', from: '2026-03-01', to: '2026-03-05' });
  });

  it('writes back what it reads; adding a filter on a key replaces the previous one; removing takes one out', () => {
    const search = '?period=custom&from=2026-01-01&to=2026-01-31&f=is,source,Google&f=is,screen,Mobile&comparison=previous_period';
    const state = parse(search);
    expect(searchOf(state, DEFAULT_METRIC)).toBe(search);
    const bing = withFilter(state, 'source', 'Bing');
    expect(bing.filters).toEqual([{ operator: 'is', key: 'screen', values: ['Mobile'] }, { operator: 'is', key: 'source', values: ['Bing'] }]);
    expect(withoutFilter(state, 0).filters).toEqual([{ operator: 'is', key: 'screen', values: ['Mobile'] }]);
    expect(searchOf(parse(''), DEFAULT_METRIC)).toBe('');
  });
});
