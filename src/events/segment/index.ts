/**
 * Segment Spec input: the mapping to our own events (mapping.ts), the schema of an acceptable
 * Segment message (schema.ts) and the bytes-in parser the worker and recompute use (parse.ts).
 * The User-Agent helper the mapping uses for browser names is src/events/user-agent.ts.
 */
export { mapSegmentMessage, segmentToEvent, utmOf, type SegmentMappingOptions, type SegmentMappingResult, type SegmentParsed } from './mapping';
export { parseSegmentEvent, type ParsedSegmentEvent } from './parse';
export { SEGMENT_TYPES, segmentMessageSchema, type SegmentMessage, type SegmentType } from './schema';
export { browserOf, parseUserAgent, MAX_USER_AGENT_CHARS, type ClientHints, type UserAgentInfo } from '../user-agent';
