import { MAX_PROPERTIES_DEPTH, nestingDepth } from '../../../src/events/event-schema';
import { MAX_EVENT_BYTES, parseEvent, validateEvent } from '../../../src/events/parse-event';

const base = { event_id: 'e1', type: 'click', timestamp: Date.UTC(2024, 4, 1), user_id: 'u1' };

/** `properties` nested `levels` deep: {a:{a:…{}}} with `levels` objects. */
function nested(levels: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let node = root;
  for (let i = 1; i < levels; i++) {
    const child: Record<string, unknown> = {};
    node.a = child;
    node = child;
  }
  return root;
}

describe('input limits', () => {
  it('counts nesting levels of objects and arrays', () => {
    expect(nestingDepth({})).toBe(1);
    expect(nestingDepth({ a: 1, b: 'x' })).toBe(1);
    expect(nestingDepth({ a: [1, { b: [] }] })).toBe(4);
    expect(nestingDepth(nested(7))).toBe(7);
  });

  it(`accepts properties nested ${MAX_PROPERTIES_DEPTH} levels deep and rejects one more, on both validation paths`, () => {
    const ok = { ...base, properties: nested(MAX_PROPERTIES_DEPTH) };
    const tooDeep = { ...base, properties: nested(MAX_PROPERTIES_DEPTH + 1) };
    expect(parseEvent(JSON.stringify(ok)).ok).toBe(true);
    expect(validateEvent(ok).ok).toBe(true);
    for (const result of [parseEvent(JSON.stringify(tooDeep)), validateEvent(tooDeep)]) {
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.error.field).toBe('properties');
        expect(result.error.reason).toMatch(/nested deeper than/);
      }
    }
  });

  it('rejects a hostile 64 KiB of brackets without deep recursion', () => {
    const depth = 20_000;
    const text = JSON.stringify({ ...base, properties: { x: 0 } }).replace('{"x":0}', '{"x":' + '['.repeat(depth) + ']'.repeat(depth) + '}');
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_EVENT_BYTES);
    const result = parseEvent(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.field).toBe('properties');
  });
});
