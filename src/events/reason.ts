/**
 * The general reason of an invalid event, without its per-message detail, so that messages
 * failing the same way count together in summaries (recompute's stderr, the worker's
 * dead-letter log): `not valid JSON (Unexpected token 'd', "device and"...)` → `not valid JSON`.
 */
export function reasonOf(message: string): string {
  const general = message.replace(/\s*\(.*\)\s*$/s, '').trim();
  return general === '' ? message : general;
}
