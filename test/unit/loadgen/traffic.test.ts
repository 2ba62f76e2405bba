/**
 * Synthetic traffic (`sessionizer loadgen`, the benchmarks): app events run on a phone's OS —
 * a visitor drawn with a computer gets the phone that goes with it, never "mobile" on macOS.
 */
import { generateTraffic } from '../../../src/loadgen/traffic';

it('gives app events a mobile OS only', () => {
  const apps = [...generateTraffic({ users: 400, startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 3_600_000, seed: 3 })].filter((e) => e.channel === 'app');
  expect(apps.length).toBeGreaterThan(100);
  const oses = new Set(apps.map((e) => (e.device as { type: string; os: string }).os));
  expect(oses).toEqual(new Set(['iOS', 'Android']));
  expect(apps.every((e) => (e.device as { type: string }).type === 'mobile')).toBe(true);
});
