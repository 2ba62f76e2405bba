/**
 * Splits a request body into the Segment messages it carries and checks their sizes: a single
 * call (`/v1/track`…) is one message whose type is the route's; `/v1/batch` is `{batch: [...]}`
 * with each message's own `type`. Pure: no I/O.
 */
export const CALL_TYPES = ['track', 'page', 'screen', 'identify', 'group', 'alias'] as const;
export type CallType = (typeof CALL_TYPES)[number];

export type Message = Record<string, unknown>;

export type Split =
  | { ok: true; messages: Message[] }
  | { ok: false; status: 400 | 413; message: string };

/**
 * @param bodyBytes the request body's size when known: a body no larger than the message limit
 *   cannot hold a message over it, so its messages are not measured one by one.
 */
export function splitBody(route: CallType | 'batch', body: unknown, maxMessageBytes: number, bodyBytes = Infinity): Split {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { ok: false, status: 400, message: 'the body must be a JSON object' };
  const object = body as Message;
  if (route !== 'batch') return { ok: true, messages: [{ ...object, type: route }] };
  const batch = object.batch;
  if (!Array.isArray(batch)) return { ok: false, status: 400, message: 'a batch body needs a "batch" array' };
  const messages: Message[] = [];
  for (let i = 0; i < batch.length; i++) {
    const message = batch[i] as unknown;
    if (!message || typeof message !== 'object' || Array.isArray(message)) return { ok: false, status: 400, message: `batch[${i}] is not an object` };
    if (bodyBytes > maxMessageBytes) {
      const bytes = Buffer.byteLength(JSON.stringify(message));
      if (bytes > maxMessageBytes) return { ok: false, status: 413, message: `batch[${i}] is ${bytes} bytes; a message may have ${maxMessageBytes}` };
    }
    const type = (message as Message).type;
    if (typeof type !== 'string' || !(CALL_TYPES as readonly string[]).includes(type)) {
      return { ok: false, status: 400, message: `batch[${i}].type must be one of ${CALL_TYPES.join(', ')}` };
    }
    messages.push(message as Message);
  }
  // Batch-level context (analytics.js puts shared context there) applies to every message.
  const shared = object.context;
  if (shared && typeof shared === 'object' && !Array.isArray(shared)) {
    for (const m of messages) {
      const own = m.context && typeof m.context === 'object' ? (m.context as Message) : {};
      m.context = { ...(shared as Message), ...own };
    }
  }
  return { ok: true, messages };
}

/** True when the message brings an id of its own (first-party id mode). */
export function hasOwnId(message: Message): boolean {
  const nonEmpty = (v: unknown) => (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v));
  return nonEmpty(message.anonymousId) || nonEmpty(message.userId) || (message.type === 'alias' && nonEmpty(message.previousId));
}
