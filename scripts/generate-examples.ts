/**
 * Writes the shipped examples, examples/events.ndjson (see src/loadgen/example-traffic.ts):
 *   npm run generate:examples
 * The same file every time: test/unit/loadgen/example-traffic.test.ts checks that the shipped
 * file is what this writes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exampleEvents } from '../src/loadgen/example-traffic';

const out = join(__dirname, '..', 'examples', 'events.ndjson');
const events = exampleEvents();
writeFileSync(out, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
process.stderr.write(`wrote ${events.length} events to ${out}\n`);
