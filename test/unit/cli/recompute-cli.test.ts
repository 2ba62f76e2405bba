/**
 * `sessionizer recompute` as a user runs it: a real `node cli.js` process.
 *
 * The CLI is compiled once, from the current src/, into a private folder under .cache/ (ignored
 * by git and eslint) rather than into dist/: other runs and other people may be building dist/
 * at the same moment, and a half-written dist/ would make this test flaky. Node resolves the
 * dependencies from the repository's node_modules as it would for dist/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(__dirname, '../../..');
let buildDir = '';
let cli = '';
let work = '';

beforeAll(() => {
  mkdirSync(join(REPO, '.cache'), { recursive: true });
  buildDir = mkdtempSync(join(REPO, '.cache', 'cli-test-build-'));
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', buildDir, '--declaration', 'false', '--sourceMap', 'false'], {
    cwd: REPO,
    stdio: 'pipe',
  });
  cli = join(buildDir, 'cli.js');
  work = mkdtempSync(join(REPO, '.cache', 'cli-test-work-'));
}, 120_000);

afterAll(() => {
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], stdin?: string): Run {
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: work, input: stdin, encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw result.error;
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

let fileCounter = 0;
function file(lines: string[]): string {
  fileCounter += 1;
  const path = join(work, `input-${fileCounter}.ndjson`);
  writeFileSync(path, lines.map((line) => line + '\n').join(''));
  return path;
}

const MINUTE = 60_000;
const t0 = Date.UTC(2024, 4, 1, 12);

function event(id: string, userKey: string, at: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ event_id: id, type: 'page_view', timestamp: new Date(at).toISOString(), anonymous_id: userKey, ...extra });
}

function sessions(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('sessionizer recompute', () => {
  const BAD_NOT_JSON = 'this is not json';
  const BAD_NO_ZONE = JSON.stringify({ event_id: 'bad', type: 'page_view', timestamp: '2024-05-01T12:00:00', anonymous_id: 'a' });
  const BAD_NO_ID = JSON.stringify({ event_id: 'bad2', type: 'page_view', timestamp: t0 });
  const withBadLines = [
    event('e1', 'a', t0),
    BAD_NOT_JSON, // line 2
    event('e2', 'a', t0 + MINUTE),
    BAD_NO_ZONE, // line 4
    event('e3', 'b', t0),
    BAD_NO_ID, // line 6
  ];

  it('skips invalid lines: exit 0, sessions on stdout, each bad line and the counts on stderr', () => {
    const r = run(['recompute', '--input', file(withBadLines)]);
    expect(r.code).toBe(0);
    expect(sessions(r.stdout).map((s) => [s.user_key, s.events])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    expect(r.stderr).toMatch(/line 2\b.*JSON/);
    expect(r.stderr).toMatch(/line 4\b.*timestamp/);
    expect(r.stderr).toMatch(/line 6\b.*anonymous_id/);
    expect(r.stderr).not.toMatch(/line [135]\b/);
    expect(r.stderr).toMatch(/\b3 valid events\b/);
    expect(r.stderr).toMatch(/\b3 invalid lines\b/);
  });

  it('a file with lines but no event (a README): the first lines, counts by reason, exit 2', () => {
    const readme = run(['recompute', '--input', join(REPO, 'README.md')]);
    expect(readme.code).toBe(2);
    expect(readme.stdout).toBe('');
    const lines = readme.stderr.trim().split('\n');
    // Five listed lines, one summary by reason, one line saying what was expected.
    expect(lines).toHaveLength(7);
    expect(lines.slice(0, 5).every((line) => /^line \d+: not valid JSON/.test(line))).toBe(true);
    expect(lines[5]).toMatch(/^… and \d+ more invalid lines \(add --rejects FILE for every one\); by reason: \d+ not valid JSON$/);
    expect(lines[6]).toMatch(/^sessionizer: .*README\.md: none of its \d+ lines is a valid event; expected events NDJSON/);

    // Many bad lines among good ones: still a bounded listing, reasons counted, exit 0.
    const mixed = [event('ok', 'a', t0), ...Array.from({ length: 150 }, (_, i) => (i % 3 === 0 ? BAD_NO_ZONE : `not json ${i}`))];
    const r = run(['recompute', '--input', file(mixed)]);
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n').filter((line) => line.startsWith('line '))).toHaveLength(5);
    expect(r.stderr).toMatch(/… and 145 more invalid lines .*; by reason: 100 not valid JSON; 50 timestamp: /);
    expect(r.stderr).toMatch(/151 lines, 1 valid events .* 150 invalid lines skipped/);
  });

  it('--rejects gets exactly the bad lines as {line, error, input}', () => {
    const rejects = join(work, 'rejects.ndjson');
    const r = run(['recompute', '--input', file(withBadLines), '--rejects', rejects]);
    expect(r.code).toBe(0);
    const rejected = readFileSync(rejects, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rejected.map((x) => Object.keys(x).sort())).toEqual([
      ['error', 'input', 'line'],
      ['error', 'input', 'line'],
      ['error', 'input', 'line'],
    ]);
    expect(rejected.map((x) => [x.line, x.input])).toEqual([
      [2, BAD_NOT_JSON],
      [4, BAD_NO_ZONE],
      [6, BAD_NO_ID],
    ]);
    expect(rejected[1]?.error).toMatch(/timestamp/);
    expect(sessions(r.stdout)).toHaveLength(2);
  });

  it('writes to --output when given', () => {
    const output = join(work, 'sessions.ndjson');
    const r = run(['recompute', '--input', file([event('e1', 'a', t0)]), '--output', output]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(sessions(readFileSync(output, 'utf8')).map((s) => s.user_key)).toEqual(['a']);
  });

  it('--identities writes the identity map beside the sessions, sorted by anonymous_id', () => {
    const identities = join(work, 'identities.ndjson');
    const input = file([
      event('e1', 'tablet', t0, { user_id: 'bob' }),
      event('e2', 'phone', t0, { user_id: 'alice' }),
      event('e3', 'tablet', t0 + MINUTE, { user_id: 'alice' }),
      event('e4', 'laptop', t0, { user_id: '' }),
    ]);
    const r = run(['recompute', '--input', input, '--identities', identities]);
    expect(r.code).toBe(0);
    expect(sessions(r.stdout).map((s) => s.user_key)).toEqual(['laptop', 'phone', 'tablet']);
    expect(readFileSync(identities, 'utf8')).toBe(
      `{"site":"default","anonymous_id":"phone","user_id":"alice","linked_at":"${new Date(t0).toISOString()}"}\n` +
        `{"site":"default","anonymous_id":"tablet","user_id":"alice","linked_at":"${new Date(t0 + MINUTE).toISOString()}"}\n`,
    );
    expect(r.stderr).toContain('2 linked anonymous ids');
    const both = run(['recompute', '--input', input, '--identities', '-']);
    expect([both.code, both.stderr]).toEqual([2, expect.stringMatching(/--identities - and --output - would share stdout/)]);
    expect(run(['recompute', '--input', input, '--identities', input]).code).toBe(2);
  });

  it('reads stdin with --input -', () => {
    const r = run(['recompute', '--input', '-'], [event('e1', 'a', t0), event('e2', 'a', t0 + MINUTE)].join('\n') + '\n');
    expect(r.code).toBe(0);
    expect(sessions(r.stdout).map((s) => [s.user_key, s.events])).toEqual([['a', 2]]);
  });

  it('sorts the output by user_key, then started_at', () => {
    const lines = [
      event('1', 'carol', t0 + 100 * MINUTE),
      event('2', 'alice', t0 + 200 * MINUTE),
      event('3', 'bob', t0),
      event('4', 'alice', t0),
      event('5', 'carol', t0),
      event('6', 'alice', t0 + 100 * MINUTE),
    ];
    const r = run(['recompute', '--input', file(lines)]);
    expect(r.code).toBe(0);
    expect(sessions(r.stdout).map((s) => [s.user_key, s.started_at, s.session_number])).toEqual([
      ['alice', new Date(t0).toISOString(), 1],
      ['alice', new Date(t0 + 100 * MINUTE).toISOString(), 2],
      ['alice', new Date(t0 + 200 * MINUTE).toISOString(), 3],
      ['bob', new Date(t0).toISOString(), 1],
      ['carol', new Date(t0).toISOString(), 1],
      ['carol', new Date(t0 + 100 * MINUTE).toISOString(), 2],
    ]);
  });

  it('gives byte-identical output whatever the order of the input lines', () => {
    const lines = [
      event('a1', 'u1', t0, { page: { path: '/x' }, campaign: { source: 'one' } }),
      event('a0', 'u1', t0, { page: { path: '/y' }, campaign: { source: 'two' } }), // same time: event_id decides
      event('a2', 'u1', t0 + 20 * MINUTE, { user_id: 'login' }),
      event('a3', 'u1', t0 + 50 * MINUTE),
      event('a3', 'u1', t0 + 50 * MINUTE), // exact duplicate
      event('b1', 'u2', t0 + 5 * MINUTE, { type: 'click', key_event: true }),
      event('b2', 'u2', t0 + 35 * MINUTE, { device: { type: 'mobile' } }),
      event('b3', 'u2', t0 + 36 * MINUTE, { device: { type: 'tablet' } }),
      event('c1', 'u3', t0 + 40 * MINUTE, { channel: 'app', type: 'screen_view', name: 'Home' }),
    ];
    const reference = run(['recompute', '--input', file(lines)]);
    expect(reference.code).toBe(0);
    expect(sessions(reference.stdout).length).toBeGreaterThan(3);
    // a fixed pseudo-random sequence, so a failure can be reproduced
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 4; i++) {
      const shuffled = lines
        .map((line) => ({ line, key: random() }))
        .sort((a, b) => a.key - b.key)
        .map((x) => x.line);
      const r = run(['recompute', '--input', file(shuffled), '--buffer-events', '3']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(reference.stdout);
    }
  });

  it('--timeout-minutes changes where sessions split', () => {
    const input = file([event('e1', 'a', t0), event('e2', 'a', t0 + 1.5 * MINUTE), event('e3', 'a', t0 + 2.5 * MINUTE)]);
    const byDefault = run(['recompute', '--input', input]);
    expect(sessions(byDefault.stdout).map((s) => s.events)).toEqual([3]);
    const oneMinute = run(['recompute', '--input', input, '--timeout-minutes', '1']);
    expect(oneMinute.code).toBe(0);
    // 90 s ≥ 1 min splits; a gap of exactly 1 min splits too
    expect(sessions(oneMinute.stdout).map((s) => s.events)).toEqual([1, 1, 1]);
  });

  it('exits 2 without --input', () => {
    const r = run(['recompute']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--input/);
    expect(r.stdout).toBe('');
  });

  it('exits 2 with a one-line reason when the input does not exist', () => {
    const missing = join(work, 'no-such-file.ndjson');
    const r = run(['recompute', '--input', missing]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(missing);
  });

  it.each([['--output'], ['--rejects']])('refuses %s naming the input file (exit 2) and leaves the input intact', (flag) => {
    const input = file([event('e1', 'a', t0), event('e2', 'a', t0 + MINUTE)]);
    const before = readFileSync(input, 'utf8');
    const r = run(['recompute', '--input', input, flag, input]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/would be overwritten/);
    expect(readFileSync(input, 'utf8')).toBe(before);
  });

  it('exits 2 with a one-line reason when the input is a directory', () => {
    const r = run(['recompute', '--input', work]);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((line) => line !== '')).toHaveLength(1);
  });

  it.each([['abc'], ['0'], ['-5'], ['']])('exits 2 for --timeout-minutes %p', (value) => {
    const r = run(['recompute', '--input', file([event('e1', 'a', t0)]), '--timeout-minutes', value]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/timeout-minutes/);
    expect(r.stdout).toBe('');
  });

  it('exits 2 for an unknown option', () => {
    const r = run(['recompute', '--input', file([event('e1', 'a', t0)]), '--no-such-option']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });

  describe('input that is not UTF-8', () => {
    // A terminal must never receive the raw bytes: no control characters, no U+FFFD.
    // eslint-disable-next-line no-control-regex
    const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffd]/;

    it('a line that is not UTF-8 is an invalid line: listed by number, counted, in --rejects', () => {
      const latin1 = Buffer.from(event('e2', 'a', t0 + MINUTE, { page: { title: 'caf\u00e9' } }), 'latin1');
      const path = join(work, 'latin1-line.ndjson');
      writeFileSync(path, Buffer.concat([Buffer.from(event('e1', 'a', t0) + '\n'), latin1, Buffer.from('\n' + event('e3', 'a', t0 + 2 * MINUTE) + '\n')]));
      const rejects = join(work, 'latin1-rejects.ndjson');
      const r = run(['recompute', '--input', path, '--rejects', rejects]);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`line 2: not valid UTF-8 (byte 0xe9 at offset ${latin1.indexOf(0xe9)})`);
      expect(r.stderr).toMatch(/\b1 invalid lines\b/);
      expect(r.stderr).not.toMatch(RAW);
      expect(r.stdout.trim().split('\n')).toHaveLength(1); // e1 and e3: one session
      const rejected = JSON.parse(readFileSync(rejects, 'utf8').trim()) as { line: number; error: string; input: string };
      expect(rejected.line).toBe(2);
      expect(rejected.error).toMatch(/^not valid UTF-8/);
    });

    it.each([
      ['gzip-compressed', gzipSync(Buffer.from(event('e1', 'a', t0) + '\n')), /gzip-compressed data \(decompress it first/],
      ['binary', Buffer.from([0x7b, 0x00, 0x01, 0x02, 0xff, 0x1b, 0x5b, 0x32, 0x4a, 0x0a]), /binary data \(a NUL byte at offset 1\)/],
      ['UTF-16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(event('e1', 'a', t0), 'utf16le')]), /UTF-16 text/],
    ])('a %s file: exit 2, one line naming the file and what it is, no raw bytes', (name, bytes, reason) => {
      const path = join(work, `${name}.input`);
      writeFileSync(path, bytes);
      const output = join(work, `${name}.out`);
      writeFileSync(output, 'kept');
      const r = run(['recompute', '--input', path, '--output', output]);
      expect(r.code).toBe(2);
      const lines = r.stderr.split('\n').filter((line) => line !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(path);
      expect(lines[0]).toMatch(reason);
      expect(r.stderr).not.toMatch(RAW);
      expect(readFileSync(output, 'utf8')).toBe('kept'); // refused before the output was opened
    });

    it('the same on stdin', () => {
      const result = spawnSync(process.execPath, [cli, 'recompute', '--input', '-'], {
        cwd: work,
        input: gzipSync(Buffer.from(event('e1', 'a', t0) + '\n')),
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(result.status).toBe(2);
      expect(result.stderr.trim()).toMatch(/^sessionizer: cannot read stdin: not UTF-8 text but gzip-compressed data/);
      expect(result.stdout).toBe('');
    });
  });

  describe('--format segment', () => {
    const segment = (id: string, at: number, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ type: 'track', event: 'Clicked', messageId: id, anonymousId: 'seg-1', timestamp: new Date(at).toISOString(), ...extra });

    it('reads Segment messages; invalid ones are listed, counted and written to --rejects', () => {
      const rejects = join(work, 'segment-rejects.ndjson');
      const input = file([
        segment('m1', t0, { type: 'page', event: undefined, properties: { path: '/pricing' } }),
        segment('m2', t0 + MINUTE, { event: 'Order Completed' }),
        segment('m3', t0 + 2 * MINUTE, { event: undefined }),
        event('own-1', 'x', t0),
      ]);
      const r = run(['recompute', '--input', input, '--format', 'segment', '--key-events', 'Order Completed,Signed Up', '--rejects', rejects]);
      expect(r.code).toBe(0);
      const sessions = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      expect(sessions).toHaveLength(1);
      expect(sessions[0]).toMatchObject({ user_key: 'seg-1', events: 2, views: 1, entry_page: '/pricing', channel: 'web', is_engaged: 1 });
      expect(r.stderr).toContain('line 3: event: is required for a track call');
      expect(r.stderr).toMatch(/line 4: type: expected one of track, page/);
      expect(r.stderr).toMatch(/2 invalid lines skipped/);
      const rejected = readFileSync(rejects, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      expect(rejected.map((x) => x.line)).toEqual([3, 4]);
    });

    it('without the key-event list, a named conversion is just an event', () => {
      const r = run(['recompute', '--input', file([segment('m1', t0, { event: 'Order Completed' })]), '--format', 'segment']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).is_engaged).toBe(0);
    });

    it('exits 2 for an unknown format, and for --key-events without --format segment', () => {
      expect(run(['recompute', '--input', file([event('e1', 'a', t0)]), '--format', 'csv']).code).toBe(2);
      const r = run(['recompute', '--input', file([event('e1', 'a', t0)]), '--key-events', 'x']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--key-events needs --format segment/);
    });
  });
});
