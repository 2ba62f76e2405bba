/**
 * Regenerates schemas/event.schema.json from the zod event schema (src/events/event-schema.ts).
 * test/unit/events/event-json-schema.test.ts fails when the committed file drifts from it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventJsonSchema } from '../src/events/event-schema';

export const EVENT_SCHEMA_PATH = join(__dirname, '..', 'schemas', 'event.schema.json');

export function renderEventSchema(): string {
  return JSON.stringify(eventJsonSchema(), null, 2) + '\n';
}

if (require.main === module) {
  writeFileSync(EVENT_SCHEMA_PATH, renderEventSchema());
  process.stdout.write(`wrote ${EVENT_SCHEMA_PATH}\n`);
}
