/**
 * recompute's worker-thread path (buckets on disk, merged at the end) against its in-process
 * path: byte-identical output, the same stats and the same invalid-line reports in line order,
 * whatever the chunking of the input; its temporary files removed on success and on error.
 * Under ts-jest the workers load the TypeScript sources through ts-node.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { decodeEvent, encodeEvent } from '../../../src/recompute/event-order';
import { recompute, type RecomputeOptions, type RecomputeStats } from '../../../src/recompute/recompute';
import type { SessionEvent } from '../../../src/events/session-event';
import { seededRandom } from '../../../src/loadgen/traffic';

jest.setTimeout(120_000);

const T = 30 * 60_000;
const BASE = Date.UTC(2024, 4, 1);

/** Keys and values that stress the line codec and the key order (UTF-16 code units). */
const ODD = ['a\nb', 'x\u001fy', '\u001bz', '😀', 'é', 'Z', 'a', '\uffff', '"q"', 'back\\slash'];

function makeLines(count: number, seed: number): string[] {
  const rnd = seededRandom(seed);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(rnd() * values.length)] as T;
  const users = Math.max(3, Math.floor(count / 12));
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = rnd();
    if (r < 0.01) {
      lines.push(pick(['', '   ', 'not json', '{"event_id": 1}', '[]', 'null', '{"event_id":"x","type":"t","timestamp":"2023-02-29T00:00:00Z","anonymous_id":"a"}']));
      continue;
    }
    const u = Math.floor(rnd() * users);
    const key = rnd() < 0.05 ? `${pick(ODD)}-${u}` : `anon-${u}`;
    const ts = BASE + Math.floor(rnd() * 3 * 86_400_000);
    const event: Record<string, unknown> = {
      event_id: rnd() < 0.03 ? 'dup' : `e-${i}`,
      type: pick(['page_view', 'screen_view', 'tap', 'purchase']),
      timestamp: rnd() < 0.5 ? ts : new Date(ts).toISOString().replace('Z', pick(['Z', '+00:00'])),
      ...(rnd() < 0.8 ? { anonymous_id: key } : { user_id: key }),
      // Several sites with the same keys: buckets and the merge order by site, then user key.
      ...(rnd() < 0.3 ? { site: pick(['shop', 'a-b.c', 'default', 'zz']) } : {}),
      ...(rnd() < 0.3 ? { user_id: `user-${u}` } : {}),
      channel: pick(['web', 'app', null, undefined]),
      key_event: rnd() < 0.1,
      page: { url: pick(['https://shop.example/a?v=1', 'https://Shop.Example/b', '/rel', 'http://[::1]/x']), referrer: pick([null, 'https://www.google.com/', 'https://shop.example/']), ...(rnd() < 0.5 ? { path: pick(['/p', ODD[0]]) } : {}) },
      ...(rnd() < 0.2 ? { campaign: { source: pick(['news', ODD[1]]), medium: 'email' } } : {}),
      device: { type: pick(['mobile', 'desktop']), os: pick(['iOS', ODD[2], '']) },
      geo: { country: pick(['de', 'US', null]), city: pick(['Köln', '😀', ODD[3]]) },
      properties: { n: i },
    };
    lines.push(JSON.stringify(event));
    // Copies: exact ones, and ones with the same id and time but other content.
    if (rnd() < 0.02) lines.push(JSON.stringify(event));
    if (rnd() < 0.02) lines.push(JSON.stringify({ ...event, type: 'other', device: { os: 'Other' } }));
  }
  return lines;
}

/** Cuts text into byte chunks at random positions (also inside UTF-8 sequences). */
function chunked(text: string, seed: number, maxChunk: number): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const rnd = seededRandom(seed);
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(rnd() * maxChunk);
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

interface Run {
  out: string;
  invalid: string[];
  stats: RecomputeStats;
}

async function run(chunks: Buffer[], options: Partial<RecomputeOptions>): Promise<Run> {
  const out: Buffer[] = [];
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(Buffer.from(chunk));
      callback();
    },
  });
  const invalid: string[] = [];
  const stats = await recompute(Readable.from(chunks), output, {
    timeoutMs: T,
    onInvalid: (lineNumber, line, error) => {
      invalid.push(`${lineNumber}\t${line}\t${error.message}`);
    },
    ...options,
  });
  return { out: Buffer.concat(out).toString('utf8'), invalid, stats };
}

const withoutRuns = (stats: RecomputeStats) => ({ ...stats, spilledRuns: 0 });

describe('recompute with worker threads', () => {
  let spillDir: string;
  beforeEach(() => {
    spillDir = mkdtempSync(join(tmpdir(), 'recompute-test-'));
  });
  afterEach(() => rmSync(spillDir, { recursive: true, force: true }));

  it('gives byte-identical output, stats and invalid-line reports to the in-process path (several batches)', async () => {
    const lines = makeLines(12_000, 1);
    const text = lines.join('\r\n'); // CRLF, and no newline after the last line
    expect(Buffer.byteLength(text)).toBeGreaterThan(3 << 20);
    const inProcess = await run(chunked(text, 2, 200_000), { threads: 0 });
    const threaded = await run(chunked(text, 3, 70_000), { threads: 2, spillDir });
    expect(inProcess.stats.invalid).toBeGreaterThan(0);
    expect(inProcess.stats.duplicates).toBeGreaterThan(0);
    expect(threaded.out).toBe(inProcess.out);
    expect(threaded.invalid).toEqual(inProcess.invalid);
    expect(withoutRuns(threaded.stats)).toEqual(withoutRuns(inProcess.stats));
    expect(threaded.stats.spilledRuns).toBeGreaterThan(0);
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it('sorts buckets on disk when they exceed maxBufferedEvents, with the same output', async () => {
    const lines = makeLines(1_500, 4);
    const text = lines.join('\n') + '\n';
    const inProcess = await run(chunked(text, 5, 5_000), { threads: 0, maxBufferedEvents: 7 });
    const threaded = await run(chunked(text, 6, 5_000), { threads: 2, maxBufferedEvents: 7, spillDir });
    expect(threaded.out).toBe(inProcess.out);
    expect(threaded.invalid).toEqual(inProcess.invalid);
    expect(withoutRuns(threaded.stats)).toEqual(withoutRuns(inProcess.stats));
    expect(inProcess.stats.spilledRuns).toBe(Math.floor(inProcess.stats.events / 7));
    // More files than the at most 2 × 256 bucket files: buckets were sorted on disk too.
    expect(threaded.stats.spilledRuns).toBeGreaterThan(512);
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it('reads invalid UTF-8 and non-ASCII lines as the in-process path does', async () => {
    const valid = (key: string) => JSON.stringify({ event_id: key, type: 'page_view', timestamp: BASE, anonymous_id: key });
    const parts: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      parts.push(Buffer.from(valid(`k${i % 17}-${['a', 'é', '😀', '\u00ff'][i % 4]}`) + '\n'));
      if (i % 10 === 0) parts.push(Buffer.from([0x7b, 0x22, 0xff, 0xc3, 0x22, 0x0a])); // {"<ff><c3>"
      if (i % 15 === 0) parts.push(Buffer.concat([Buffer.from(valid(`bad-${i}`).slice(0, -2)), Buffer.from([0xe2, 0x82, 0x22, 0x7d, 0x0d, 0x0a])]));
      if (i % 20 === 0) parts.push(Buffer.from(valid(`x${i}`).replace(`x${i}`, `x\xed\xa0\x80${i}`), 'latin1'), Buffer.from('\n'));
    }
    const bytes = Buffer.concat(parts);
    const chunks = (seed: number) => {
      const rnd = seededRandom(seed);
      const out: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rnd() * 500);
        out.push(bytes.subarray(at, at + n));
        at += n;
      }
      return out;
    };
    const inProcess = await run(chunks(11), { threads: 0 });
    const threaded = await run(chunks(12), { threads: 2, spillDir });
    expect(inProcess.stats.invalid).toBeGreaterThan(0);
    expect(threaded.out).toBe(inProcess.out);
    expect(threaded.invalid).toEqual(inProcess.invalid);
    expect(withoutRuns(threaded.stats)).toEqual(withoutRuns(inProcess.stats));
  });

  it('handles an empty input and an input of blank and invalid lines only', async () => {
    for (const text of ['', '\n\n', 'nope\n\n{}']) {
      const inProcess = await run(chunked(text, 7, 3), { threads: 0 });
      const threaded = await run(chunked(text, 8, 3), { threads: 2, spillDir });
      expect(threaded).toEqual(inProcess);
    }
  });

  it('removes its temporary files and stops its workers when a hook fails', async () => {
    const text = makeLines(2_000, 9).join('\n');
    const failing = run(chunked(text, 10, 50_000), {
      threads: 2,
      spillDir,
      onInvalid: () => {
        throw new Error('rejects file is full');
      },
    });
    await expect(failing).rejects.toThrow('rejects file is full');
    expect(readdirSync(spillDir)).toEqual([]);
  });
});

describe('the spill line codec', () => {
  it('round-trips any string content', () => {
    const base: SessionEvent = decodeEvent(encodeEvent({
      userKey: 'u', eventId: 'e', ts: BASE, isView: true, keyEvent: false, channel: 'web', location: '/', anonymousId: 'u', userId: '',
      source: '(direct)', medium: '(none)', campaign: '', term: '', content: '', deviceType: '', os: '', browser: '', appVersion: '',
      country: '', region: '', city: '',
    }));
    for (const odd of [...ODD, '', '\r', '\u0000', '\u001b\u001f\n', '1', 'true']) {
      for (const field of ['userKey', 'eventId', 'location', 'userId', 'source', 'city'] as const) {
        const event = { ...base, [field]: odd };
        const line = encodeEvent(event);
        expect(line).not.toContain('\n');
        expect(decodeEvent(line)).toStrictEqual(event);
      }
    }
  });
});
