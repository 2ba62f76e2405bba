/**
 * The pages' static files, read once at start-up and served with their hashes as ETags: our CSS
 * and script (src/dashboard/assets, copied to dist by the build) and uPlot's from node_modules,
 * so no page loads anything from another origin.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function asset(path: string, type: string): Asset {
  const body = readFileSync(path);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

export function loadAssets(): ReadonlyMap<string, Asset> {
  const ours = join(__dirname, '..', 'assets');
  const uplot = join(dirname(require.resolve('uplot/package.json')), 'dist');
  return new Map([
    ['dashboard.css', asset(join(ours, 'dashboard.css'), 'text/css; charset=utf-8')],
    ['dashboard.js', asset(join(ours, 'dashboard.js'), 'text/javascript; charset=utf-8')],
    ['favicon.svg', asset(join(ours, 'favicon.svg'), 'image/svg+xml')],
    ['uplot.min.css', asset(join(uplot, 'uPlot.min.css'), 'text/css; charset=utf-8')],
    ['uplot.iife.min.js', asset(join(uplot, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8')],
  ]);
}
