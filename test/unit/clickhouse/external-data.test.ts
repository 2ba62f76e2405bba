/**
 * The body of a query with external data: TabSeparated fields escaped so any user key survives
 * (tabs, newlines, backslashes), in a multipart/form-data body a standard parser reads back.
 */
import { inlineIntegers, multipartBody, tsvField } from '../../../src/clickhouse/external-data';

describe('external data', () => {
  it('escapes what TabSeparated gives meaning to, and nothing else', () => {
    expect(tsvField('plain é')).toBe('plain é');
    expect(tsvField('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(tsvField(-12)).toBe('-12');
  });

  it('makes a multipart body whose file parts are the tables, row per line', async () => {
    const keys = ['k1', 'with\ttab', 'with\nnewline', 'back\\slash', '--other-boundary'];
    const body = multipartBody(
      [
        { name: 'recalc_page', structure: 'user_key String, start Int64', rows: keys.map((k, i) => [k, i]) },
        { name: 'empty', structure: 'x String', rows: [] },
      ],
      'sessionizer-boundary',
    ) as Buffer;
    const form = await new Response(body, { headers: { 'content-type': 'multipart/form-data; boundary=sessionizer-boundary' } }).formData();
    const page = form.get('recalc_page') as File;
    expect(page.name).toBe('recalc_page.tsv');
    const text = await page.text();
    expect(text.split('\n').slice(0, -1)).toEqual(keys.map((k, i) => `${tsvField(k)}\t${i}`));
    expect(await (form.get('empty') as File).text()).toBe('');
  });

  it('refuses a boundary that occurs in the data (the caller picks another)', () => {
    expect(multipartBody([{ name: 't', structure: 'x String', rows: [['a'], ['--b-1']] }], 'b-1')).toBeNull();
    expect(multipartBody([{ name: 't', structure: 'x String', rows: [['a'], ['--b-1']] }], 'b-2')).not.toBeNull();
  });

  it('binds integer parameters into the text, and refuses anything else', () => {
    expect(inlineIntegers('WHERE t >= {since:Int64} LIMIT {limit:UInt32}', { since: -5, limit: 500 })).toBe('WHERE t >= toInt64(-5) LIMIT toUInt32(500)');
    expect(() => inlineIntegers('WHERE k = {k:String}', { k: "x' OR 1" })).toThrow(/integers only/);
    expect(() => inlineIntegers('WHERE t >= {since:Int64}', { since: '1; DROP' })).toThrow(/integers only/);
    expect(() => inlineIntegers('WHERE t >= {since:Int64}', { since: 1.5 })).toThrow(/integers only/);
  });
});
