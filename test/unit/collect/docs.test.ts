/**
 * docs/collect.md and the README stay true to the code: every collector setting is in the
 * README's configuration table, every metric docs/collect.md lists exists, and every status the
 * server answers is documented.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CollectMetrics } from '../../../src/collect/metrics';
import { configSchema } from '../../../src/config';

const REPO = join(__dirname, '..', '..', '..');
const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const DOC = readFileSync(join(REPO, 'docs', 'collect.md'), 'utf8');
const SERVER = readFileSync(join(REPO, 'src', 'collect', 'server.ts'), 'utf8');

describe('collector docs', () => {
  it('lists every COLLECT_* setting in the README configuration table', () => {
    const keys = Object.keys(configSchema.shape).filter((k) => k.startsWith('COLLECT_'));
    expect(keys.length).toBeGreaterThan(10);
    for (const key of keys) expect({ key, inReadme: README.includes(`| \`${key}\` |`) }).toEqual({ key, inReadme: true });
  });

  it('documents exactly the metrics the collector has', async () => {
    const names = (await new CollectMetrics().registry.getMetricsAsJSON()).map((m) => m.name);
    const documented = [...DOC.matchAll(/^\| `(sessionizer_collect_[a-z_]+)/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(names.sort());
  });

  it('documents every status the server answers', () => {
    // Statuses written out, and 413 which comes from the body limit or splitBody's verdict.
    const statuses = new Set([...SERVER.matchAll(/new HttpError\((\d{3})/g)].map((m) => m[1] as string));
    expect(SERVER).toMatch(/status = 413/);
    statuses.add('413');
    for (const status of ['400', '401', '413', '429', '503']) expect(statuses).toContain(status);
    for (const status of [...statuses, '200']) expect({ status, documented: DOC.includes(`| ${status} |`) }).toEqual({ status, documented: true });
  });
});
