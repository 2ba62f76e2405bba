/**
 * The first-party browser script (`browser/s.js`), read once at start-up and kept with its gzip
 * form and an ETag, so serving it costs no work per request.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const SCRIPT_PATH = join(__dirname, 'browser', 's.js');

export interface BrowserScript {
  source: Buffer;
  gzip: Buffer;
  etag: string;
}

export function browserScript(path = SCRIPT_PATH): BrowserScript {
  const source = readFileSync(path);
  return {
    source,
    gzip: gzipSync(source, { level: 9 }),
    etag: `"${createHash('sha256').update(source).digest('hex').slice(0, 16)}"`,
  };
}
