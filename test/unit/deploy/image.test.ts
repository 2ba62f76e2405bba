/**
 * SLOW (about 30 s): the image's file tree, built the way the Dockerfile builds it, without a
 * container engine. A copy of the build context (only what .dockerignore lets in) is built with
 * `npm run build`; every path the Dockerfile copies out of the build stage must exist there.
 * Then the runtime tree is assembled as in the runtime stage — `npm ci --omit=dev
 * --ignore-scripts` from package-lock.json, plus dist/ and schemas/ — and the entry point must
 * work from it: `--help`, `recompute` over the example events, the Lua scripts and the
 * migrations found, and no development package (chdb, typescript, jest) installed.
 *
 * `npm ci` takes its packages from the local npm cache when it has them (--prefer-offline), so
 * after the project's own `npm ci` this needs no network.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { copyParts, dockerIgnored, readDockerfile, readDockerignore, REPO, type Stage } from './dockerfile-model';

jest.setTimeout(120_000);

const model = readDockerfile();
const runtime = model.stages[model.stages.length - 1] as Stage;
let work = '';
let context = '';
let image = '';

/** Copies the build context: the repository's files that .dockerignore does not exclude (no node_modules, dist, .git). */
function copyContext(to: string): void {
  const rules = readDockerignore();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      const rel = relative(REPO, path).split('\\').join('/');
      // An excluded directory is skipped unless a `!dir/…` rule lets something below it back in.
      if (rel === 'node_modules' || rel === '.git' || dockerIgnored(rules, rel)) {
        if (!statSync(path).isDirectory() || !rules.some((r) => r.startsWith(`!${rel}/`))) continue;
      }
      if (statSync(path).isDirectory()) walk(path);
      else {
        mkdirSync(join(to, relative(REPO, dir)), { recursive: true });
        cpSync(path, join(to, rel));
      }
    }
  };
  walk(REPO);
}

function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  return spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 90_000, maxBuffer: 64 * 1024 * 1024 });
}

beforeAll(() => {
  mkdirSync(join(REPO, '.cache'), { recursive: true });
  work = mkdtempSync(join(REPO, '.cache', 'image-test-'));
  context = join(work, 'context');
  image = join(work, 'image');
  mkdirSync(context);
  mkdirSync(image);
  copyContext(context);
  // The build stage's `npm ci` (all dependencies) is the repository's node_modules here.
  symlinkSync(join(REPO, 'node_modules'), join(context, 'node_modules'), 'dir');
  execFileSync('npm', ['run', 'build'], { cwd: context, stdio: 'pipe' });
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the image file tree', () => {
  it('the build context holds the sources and nothing bulky', () => {
    expect(existsSync(join(context, 'src', 'cli.ts'))).toBe(true);
    expect(existsSync(join(context, 'schemas', 'clickhouse'))).toBe(true);
    for (const absent of ['test', 'deploy', '.cache', 'README.md']) expect({ absent, present: existsSync(join(context, absent)) }).toEqual({ absent, present: false });
  });

  it('npm run build in the build stage produces every path the later stages copy from it', () => {
    const workdir = '/app';
    const fromBuild = model.stages.flatMap((stage) =>
      stage.steps.filter((s) => s.keyword === 'COPY' && s.flags.from === 'build').flatMap((s) => copyParts(s).sources),
    );
    expect(fromBuild.length).toBeGreaterThan(0);
    for (const source of fromBuild) {
      expect(source.startsWith(`${workdir}/`)).toBe(true);
      expect({ source, exists: existsSync(join(context, source.slice(workdir.length + 1))) }).toEqual({ source, exists: true });
    }
    expect(existsSync(join(context, 'dist', 'cli.js'))).toBe(true);
    expect(readdirSync(join(context, 'dist', 'state', 'scripts')).filter((f) => f.endsWith('.lua')).length).toBeGreaterThanOrEqual(3);
  });

  it('the runtime tree (npm ci --omit=dev, dist, schemas) runs the entry point', () => {
    for (const copy of runtime.steps.filter((s) => s.keyword === 'COPY')) {
      const { sources, destination } = copyParts(copy);
      expect(destination).toMatch(/^\.\//);
      if (copy.flags.from === 'deps') continue; // node_modules: installed below, as the deps stage does
      for (const source of sources) {
        // Sources of the build stage are under its WORKDIR /app, which is the context copy here.
        const from = join(context, copy.flags.from === 'build' ? source.replace(/^\/app\//, '') : source);
        cpSync(from, destination.endsWith('/') ? join(image, destination, basename(source)) : join(image, destination), { recursive: true });
      }
    }
    cpSync(join(context, 'package-lock.json'), join(image, 'package-lock.json'));
    const install = run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], image);
    expect({ status: install.status, stderr: install.stderr.slice(-2000) }).toMatchObject({ status: 0 });

    for (const devOnly of ['chdb', 'typescript', 'jest', 'ts-node', 'testcontainers', 'puppeteer-core', 'axe-core']) {
      expect({ devOnly, installed: existsSync(join(image, 'node_modules', devOnly)) }).toEqual({ devOnly, installed: false });
    }
    // yaml reads the dashboard's access file (DASHBOARD_CONFIG may be YAML); uplot and fflate serve its pages.
    for (const needed of ['kafkajs', 'ioredis', '@clickhouse/client', 'pino', 'prom-client', 'zod', 'commander', 'yaml', '@fastify/cookie', '@fastify/formbody', 'uplot', 'fflate']) {
      expect({ needed, installed: existsSync(join(image, 'node_modules', needed)) }).toEqual({ needed, installed: true });
    }

    const help = run(process.execPath, ['dist/cli.js', '--help'], image);
    expect(help.status).toBe(0);
    for (const command of ['worker', 'collect', 'dashboard', 'recompute', 'migrate', 'produce', 'loadgen', 'report']) expect(help.stdout).toContain(command);

    const recompute = run(process.execPath, ['dist/cli.js', 'recompute', '--input', join(REPO, 'examples', 'events.ndjson')], image);
    expect({ status: recompute.status, stderr: recompute.stderr }).toMatchObject({ status: 0 });
    const sessions = recompute.stdout.trim().split('\n').map((line) => JSON.parse(line) as { session_id: string });
    expect(sessions.length).toBeGreaterThan(100);
    expect(sessions.every((s) => /^[0-9a-f]{32}$/.test(s.session_id))).toBe(true);

    // The worker's run-time files resolve from the image layout: Lua scripts and migrations.
    const files = run(
      process.execPath,
      [
        '-e',
        `const names = [];
         require('./dist/state/script-loader').defineStateCommands({ defineCommand: (name) => names.push(name) });
         const m = require('./dist/clickhouse/migrations');
         console.log(JSON.stringify({ scripts: names, migrations: m.readSchemaFiles(m.DEFAULT_SCHEMA_DIR).map((f) => f.name) }));`,
      ],
      image,
    );
    expect(files.status).toBe(0);
    const found = JSON.parse(files.stdout) as { scripts: string[]; migrations: string[] };
    expect(found.scripts).toEqual(expect.arrayContaining(['claimPartition', 'commitBatch', 'ackOutbox']));
    expect(found.migrations).toContain('001_sessions.sql');

    // The collector's run-time files: the browser script and the bundled geo database.
    const collect = run(
      process.execPath,
      [
        '-e',
        `const fs = require('fs');
         const script = require('./dist/collect/script').browserScript();
         const dbs = require('./dist/collect/geo').bundledDatabases();
         console.log(JSON.stringify({ gzip: script.gzip.length, dbs: dbs.map((f) => fs.statSync(f).size) }));`,
      ],
      image,
    );
    expect({ status: collect.status, stderr: collect.stderr }).toMatchObject({ status: 0 });
    const shipped = JSON.parse(collect.stdout) as { gzip: number; dbs: number[] };
    expect(shipped.gzip).toBeLessThanOrEqual(2048);
    expect(shipped.dbs).toHaveLength(2);
    expect(Math.min(...shipped.dbs)).toBeGreaterThan(10_000_000);

    // The dashboard's run-time files: its CSS, script and icon from dist, uPlot from node_modules.
    const dashboard = run(
      process.execPath,
      ['-e', `const assets = require('./dist/dashboard/pages/assets').loadAssets(); console.log(JSON.stringify(Object.fromEntries([...assets].map(([name, a]) => [name, a.body.length]))));`],
      image,
    );
    expect({ status: dashboard.status, stderr: dashboard.stderr }).toMatchObject({ status: 0 });
    const assets = JSON.parse(dashboard.stdout) as Record<string, number>;
    expect(Object.keys(assets).sort()).toEqual(['dashboard.css', 'dashboard.js', 'favicon.svg', 'uplot.iife.min.js', 'uplot.min.css']);
    expect(assets['uplot.iife.min.js']).toBeGreaterThan(20_000);

    // Bad configuration: the worker loads all its modules, then exits 2 with a one-line reason.
    const worker = run(process.execPath, ['dist/cli.js', 'worker'], image, { HTTP_PORT: 'not-a-port' });
    expect(worker.status).toBe(2);
    expect(worker.stderr).toMatch(/^sessionizer: invalid configuration: HTTP_PORT/);
  });
});
