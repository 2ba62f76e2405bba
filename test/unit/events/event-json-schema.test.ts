import { readFileSync } from 'node:fs';
import { EVENT_SCHEMA_PATH, renderEventSchema } from '../../../scripts/write-event-schema';

describe('schemas/event.schema.json', () => {
  it('is exactly what the zod event schema generates (run `npm run schema:event` after changing it)', () => {
    expect(readFileSync(EVENT_SCHEMA_PATH, 'utf8')).toBe(renderEventSchema());
  });

  it('states the rules users validate against before producing', () => {
    const schema = JSON.parse(readFileSync(EVENT_SCHEMA_PATH, 'utf8'));
    expect(schema.required).toEqual(expect.arrayContaining(['event_id', 'type', 'timestamp']));
    expect(schema.properties.channel.anyOf[0].enum).toEqual(['web', 'app', 'server', 'store']);
    expect(schema.properties.event_id.maxLength).toBe(128);
    expect(schema.anyOf).toHaveLength(2);
  });
});
