/**
 * Writes synthetic events NDJSON (see src/loadgen/traffic.ts), any amount of it:
 *   ts-node scripts/generate-events.ts --users 2000 --out events.ndjson [--seed 7] …
 * (The shipped examples come from scripts/generate-examples.ts.)
 */
import { createWriteStream } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { LineWriter } from '../src/io/line-writer';
import { generateTraffic } from '../src/loadgen/traffic';

const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
};

async function main(): Promise<void> {
  const opts = new Command('generate-events')
    .requiredOption('--users <n>', 'visitors', num)
    .option('--out <file>', 'output NDJSON file, - for stdout', '-')
    .option('--visits <n>', 'visits per user on average', num, 3)
    .option('--events <n>', 'events per visit on average', num, 6)
    .option('--start <iso>', 'event time of the first visits', '2024-05-01T00:00:00Z')
    .option('--span-hours <n>', 'visits start within this many hours', num, 48)
    .option('--duplicates <rate>', 'share of events sent twice', num, 0.01)
    .option('--disorder-seconds <n>', 'bounded disorder of arrival', num, 60)
    .option('--seed <n>', 'random seed', num, 1)
    .parse()
    .opts();
  const out = opts.out === '-' ? process.stdout : createWriteStream(opts.out);
  const writer = new LineWriter(out);
  let count = 0;
  for (const event of generateTraffic({
    users: opts.users,
    visitsPerUser: opts.visits,
    eventsPerVisit: opts.events,
    startMs: Date.parse(opts.start),
    spanMs: opts.spanHours * 3_600_000,
    duplicateRate: opts.duplicates,
    disorderMs: opts.disorderSeconds * 1000,
    seed: opts.seed,
  })) {
    await writer.write(JSON.stringify(event));
    count += 1;
  }
  await writer.close();
  process.stderr.write(`generated ${count} events\n`);
}

void main();
