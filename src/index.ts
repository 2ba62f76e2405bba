/** Library entry: the session engine and event parsing, for embedding the same rules elsewhere. */
export * from './engine/engine';
export * from './engine/session-row';
export { parseEvent, validateEvent, MAX_EVENT_BYTES } from './events/parse-event';
export { eventSchema, eventJsonSchema, type ValidEvent } from './events/event-schema';
export { toSessionEvent, type SessionEvent } from './events/session-event';
export { recompute, type RecomputeOptions, type RecomputeStats } from './recompute/recompute';
