/**
 * The audience statement is fixed text chosen by which filters are present: no value a user
 * types ever becomes part of it (it travels as a query parameter), and bad values are refused
 * with a message naming the option, before anything is queried.
 */
import fc from 'fast-check';
import { parseAudienceOptions } from '../../../src/commands/audience-command';
import { audienceFilterSchema, audienceIntoTable, audienceSelect } from '../../../src/people/audience';
import { main } from '../../../src/cli';

describe('audience statements', () => {
  it('never contain a filter value: the same text whatever the values', () => {
    const base = audienceSelect(audienceFilterSchema.parse({ source: 's', medium: 'm', campaign: 'c', deviceType: 'd', touch: 'any' }), 'db').sql;
    fc.assert(
      // eslint-disable-next-line no-control-regex -- values with control characters are refused (tested below)
      fc.property(fc.string({ minLength: 1, maxLength: 50 }).filter((v) => !/[\u0000-\u001f\u007f]/.test(v)), (value) => {
        const filter = audienceFilterSchema.parse({ source: value, medium: value, campaign: value, deviceType: value, touch: 'any' });
        const { sql, params } = audienceSelect(filter, 'db');
        expect(sql).toBe(base);
        expect(params).toMatchObject({ source: value, medium: value, campaign: value, device_type: value });
      }),
      { numRuns: 500 },
    );
  });

  it('builds one condition per filter, with typed placeholders', () => {
    const filter = audienceFilterSchema.parse({ since: '2024-05-01', minSessions: '3', engaged: true, converted: true, channel: 'app', country: 'fr', source: 'x', touch: 'last' });
    const { where, params } = audienceSelect(filter, 'db');
    expect(where).toBe(
      "last_seen >= fromUnixTimestamp64Milli({since:Int64}, 'UTC') AND sessions >= {min_sessions:UInt64} AND engaged_sessions > 0 AND " +
        'converting_sessions > 0 AND last_source = {source:String} AND has(channels, {channel:String}) AND has(countries, {country:String})',
    );
    expect(params).toEqual({ since: Date.parse('2024-05-01T00:00:00Z'), min_sessions: 3, source: 'x', channel: 'app', country: 'FR' });
    expect(audienceSelect(audienceFilterSchema.parse({}), 'db').where).toBe('1');
  });

  it('names the target table only through an Identifier parameter', () => {
    const { sql, params } = audienceIntoTable(audienceFilterSchema.parse({ converted: true }), 'db', 'buyers', false);
    expect(sql).toMatch(/^CREATE TABLE db\.\{audience_table:Identifier\} ENGINE = MergeTree/);
    expect(sql).not.toContain('buyers');
    expect(params).toEqual({ audience_table: 'buyers' });
  });
});

describe('audience options', () => {
  it.each([
    [{ country: 'DEU' }, /--country must be an ISO 3166-1 alpha-2 code/],
    [{ channel: 'email' }, /--channel/],
    [{ minSessions: '0' }, /--min-sessions/],
    [{ minSessions: '2.5' }, /--min-sessions must be a whole number/],
    [{ since: 'yesterday' }, /--since: expected YYYY-MM-DD/],
    [{ touch: 'middle' }, /--touch/],
    [{ source: '' }, /--source must not be empty/],
    [{ deviceType: 'a\u0000b' }, /--device-type holds control characters/],
    [{ format: 'xml' }, /--format/],
    [{ intoTable: 'a.b' }, /--into-table must be a plain table name/],
    [{ intoTable: 't', count: true }, /does not go with --count/],
    [{ replace: true }, /--replace needs --into-table/],
  ])('refuses %j', (options, message) => {
    expect(() => parseAudienceOptions(options)).toThrow(message);
  });

  it('names every problem at once', () => {
    expect(() => parseAudienceOptions({ country: 'x', channel: 'y' })).toThrow(/--country.*; --channel|--channel.*; --country/);
  });

  it('exits 2 on a bad filter, before connecting anywhere', async () => {
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['node', 'sessionizer', 'audience', '--country', "DE' OR 1=1"])).toBe(2);
      expect(String(write.mock.calls.at(-1)?.[0])).toMatch(/^sessionizer: audience: --country/);
    } finally {
      write.mockRestore();
    }
  });
});
