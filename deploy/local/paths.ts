/**
 * Where the local services keep their state: pid files, logs, data. Under `.cache/` in the
 * checkout (git-ignored) so two checkouts never share a broker's data directory, or wherever
 * SESSIONIZER_SERVICES_DIR points.
 */
import fs from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const deployDir = __dirname;

export function stateRoot(): string {
  return path.resolve(process.env.SESSIONIZER_SERVICES_DIR ?? path.join(repoRoot, '.cache', 'local-services'));
}

/** The state directory of one service, created on demand. */
export function serviceDir(name: string): string {
  const dir = path.join(stateRoot(), name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
