/**
 * Re-adds chdb's platform packages to package-lock.json after `npm install` left some out.
 *
 *   npx ts-node --transpile-only deploy/local/chdb/fix-lockfile.ts
 *
 * Why: chdb ships its engine in one optional package per platform (@chdb/lib-linux-x64-gnu, ...).
 * The registry our machines reach does not serve all of them, so `npm install` records only the
 * ones it could fetch, and `npm ci` then rejects the lock ("Missing: @chdb/lib-darwin-arm64@ from
 * lock file"). An entry with `os`/`cpu` is all npm needs: it skips a foreign platform's package
 * without fetching it, and fetches it (from a registry that has it) on that platform.
 * Run it after adding or upgrading chdb; it changes nothing when every entry is there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../paths';

type LockEntry = Record<string, unknown> & { version?: string; optionalDependencies?: Record<string, string> };

/** os/cpu/libc of each platform package, as the packages themselves declare them. */
const PLATFORMS: Record<string, { os: string[]; cpu: string[]; libc?: string[] }> = {
  '@chdb/lib-darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  '@chdb/lib-darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  '@chdb/lib-linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
  '@chdb/lib-linux-x64-gnu': { os: ['linux'], cpu: ['x64'], libc: ['glibc'] },
};

function main(): void {
  const lockFile = path.join(repoRoot, 'package-lock.json');
  const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as { packages: Record<string, LockEntry> };
  const chdb = lock.packages['node_modules/chdb'];
  if (!chdb) throw new Error('chdb is not in package-lock.json');

  const added: string[] = [];
  for (const [name, version] of Object.entries(chdb.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    const platform = PLATFORMS[name];
    if (lock.packages[key]) continue;
    if (!platform) throw new Error(`unknown chdb platform package ${name}: add it to PLATFORMS`);
    const { libc, ...rest } = platform;
    lock.packages[key] = { version, cpu: rest.cpu, dev: true, ...(libc ? { libc } : {}), license: 'Apache-2.0', optional: true, os: rest.os };
    added.push(`${name}@${version}`);
  }
  if (added.length === 0) {
    console.error('package-lock.json already lists every chdb platform package');
    return;
  }
  // npm keeps the packages sorted by path; so does this, so the diff stays small.
  lock.packages = Object.fromEntries(
    Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b, 'en'))),
  );
  fs.writeFileSync(lockFile, `${JSON.stringify(lock, null, 2)}\n`);
  console.error(`added to package-lock.json: ${added.join(', ')}`);
}

main();
