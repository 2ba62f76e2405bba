/**
 * `produce` given a file that is not events (here the README): a bounded listing, counts by
 * reason, exit 2 — and no connection to Kafka, as there is nothing to send (the broker address
 * is a closed port).
 */
import { join } from 'node:path';
import { closedPort, REPO, runCli } from '../../support/cli';

it('produce of a file without one event: five lines, counts by reason, exit 2, no Kafka needed', async () => {
  const run = await runCli(['produce', '--input', join(REPO, 'README.md')], { env: { KAFKA_BROKERS: `127.0.0.1:${await closedPort()}` } });
  expect(run.code).toBe(2);
  const lines = run.stderr.trim().split('\n');
  expect(lines).toHaveLength(7);
  expect(lines.slice(0, 5).every((line) => /^line \d+: skipped, not JSON \(/.test(line))).toBe(true);
  expect(lines[5]).toMatch(/^… and \d+ more skipped lines; by reason: \d+ not JSON$/);
  expect(lines[6]).toMatch(/^sessionizer: .*README\.md: none of its \d+ lines is a valid event; expected events NDJSON/);
}, 60_000);
