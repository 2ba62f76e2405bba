import { statsToCsv } from '../../../src/dashboard/stats/csv';
import type { StatsResponse } from '../../../src/dashboard/stats/query';

const answer = (results: StatsResponse['results']): StatsResponse => ({
  results,
  meta: {},
  query: {
    site_id: 'shop',
    metrics: ['visitors', 'bounce_rate'],
    date_range: ['2024-05-01', '2024-05-07'],
    dimensions: ['visit:entry_page'],
    filters: [],
    include: { time_labels: false, total_rows: false, imports: false },
    pagination: { limit: 10, offset: 0 },
    timezone: 'UTC',
  },
});

describe('statsToCsv', () => {
  it('writes dimensions then metrics under their names, quoting what needs it', () => {
    expect(statsToCsv(answer([
      { dimensions: ['/a,b'], metrics: [12, 41.5] },
      { dimensions: ['/say "hi"'], metrics: [3, 0] },
    ]))).toBe('visit:entry_page,visitors,bounce_rate\n"/a,b",12,41.5\n"/say ""hi""",3,0\n');
  });

  it('keeps a value a spreadsheet would run as a formula from running', () => {
    expect(statsToCsv(answer([{ dimensions: ['=HYPERLINK("x")'], metrics: [1, 0] }])).split('\n')[1]).toBe(`"'=HYPERLINK(""x"")",1,0`);
  });
});
