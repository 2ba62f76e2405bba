/**
 * The Dockerfile, linted: this machine cannot build images, so the rules a reviewer (or
 * hadolint) would check are checked here — dockerfile-utils' diagnostics, pinned base images,
 * a non-root runtime user, exec-form entry point, a health check that really probes /healthz,
 * production-only dependencies, and a build context (.dockerignore) that holds every COPY source.
 * test/unit/deploy/image.test.ts builds the image's file tree for real.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { validate } from 'dockerfile-utils';
import { configSchema, DASHBOARD_DEFAULT_HTTP_PORT, DEFAULT_HTTP_PORTS, loadHttpPort } from '../../../src/config';
import { healthcheck, healthPortOf, isServerCommandLine } from '../../../src/healthcheck';
import { copyParts, dockerIgnored, execForm, readDockerfile, readDockerignore, REPO, type Stage } from './dockerfile-model';

const model = readDockerfile();
const runtime = model.stages[model.stages.length - 1] as Stage;
const steps = (stage: Stage, keyword: string) => stage.steps.filter((s) => s.keyword === keyword);
const defaults = configSchema.parse({});

describe('Dockerfile lint', () => {
  it('has no diagnostics from dockerfile-utils (the Dockerfile language service linter)', () => {
    const problems = validate(model.text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('pins every base image to an exact version (no latest, no floating major), the same for all stages', () => {
    expect(model.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of model.stages) {
      expect(stage.image).toMatch(/^[a-z0-9./-]+:\d+\.\d+\.\d+(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/);
      expect(stage.image).not.toMatch(/:latest\b/);
    }
    expect(new Set(model.stages.map((s) => s.image)).size).toBe(1);
    expect(runtime.image).toMatch(/-slim\b/);
  });

  it('names its stages uniquely and copies --from earlier stages only', () => {
    const names = model.stages.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    model.stages.forEach((stage, i) => {
      for (const copy of steps(stage, 'COPY').filter((c) => c.flags.from !== undefined)) {
        expect(names.slice(0, i)).toContain(copy.flags.from);
      }
    });
  });

  it('uses COPY not ADD, absolute WORKDIRs, and npm ci (never npm install)', () => {
    for (const stage of model.stages) {
      expect(steps(stage, 'ADD')).toEqual([]);
      for (const dir of steps(stage, 'WORKDIR')) expect(dir.args).toMatch(/^\//);
      for (const run of steps(stage, 'RUN')) expect(run.args).not.toMatch(/\bnpm (install|i)\b/);
    }
  });

  it('gives the runtime only production dependencies: its node_modules come from a stage that ran npm ci --omit=dev', () => {
    const copies = steps(runtime, 'COPY').filter((c) => copyParts(c).sources.some((s) => s.endsWith('node_modules')));
    expect(copies).toHaveLength(1);
    const from = model.stages.find((s) => s.name === copies[0]?.flags.from) as Stage;
    expect(from).toBeDefined();
    expect(steps(from, 'RUN').some((r) => /\bnpm ci\b.*--omit=dev/.test(r.args))).toBe(true);
    expect(steps(runtime, 'RUN').filter((r) => /\bnpm\b/.test(r.args))).toEqual([]);
  });

  it('runs the runtime as a non-root user, node dist/cli.js worker, in exec form', () => {
    const users = steps(runtime, 'USER').map((u) => u.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users[users.length - 1]);
    const userLine = steps(runtime, 'USER').at(-1)?.line ?? 0;
    const entrypoint = steps(runtime, 'ENTRYPOINT');
    expect(entrypoint).toHaveLength(1);
    expect(execForm(entrypoint[0]?.args ?? '')).toEqual(['node', 'dist/cli.js']);
    expect(execForm(steps(runtime, 'CMD')[0]?.args ?? '')).toEqual(['worker']);
    expect(entrypoint[0]?.line).toBeGreaterThan(userLine);
  });

  it('exposes the default HTTP_PORT of every server, COLLECT_PORT and DASHBOARD_PORT of src/config.ts', () => {
    const exposed = steps(runtime, 'EXPOSE').flatMap((e) => e.words);
    expect(exposed).toContain(String(DEFAULT_HTTP_PORTS.worker));
    expect(exposed).toContain(String(DEFAULT_HTTP_PORTS.collect));
    expect(exposed).toContain(String(DEFAULT_HTTP_PORTS.dashboard));
    expect(exposed).toContain(String(defaults.COLLECT_PORT));
    expect(exposed).toContain(String(defaults.DASHBOARD_PORT));
    expect(exposed).toContain(String(DASHBOARD_DEFAULT_HTTP_PORT));
  });

  it('copies dist/ and schemas/ (Lua scripts and migrations are read from there at run time) and package.json', () => {
    const destinations = steps(runtime, 'COPY').map((c) => copyParts(c));
    const fromBuild = destinations.flatMap((c) => c.sources);
    expect(fromBuild).toEqual(expect.arrayContaining(['/app/dist', 'schemas', 'package.json']));
  });

  it('takes every COPY source of the build context from files that exist and that .dockerignore lets in', () => {
    const rules = readDockerignore();
    const sources = model.stages.flatMap((stage) => steps(stage, 'COPY').filter((c) => c.flags.from === undefined).flatMap((c) => copyParts(c).sources));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect({ source, exists: existsSync(join(REPO, source)) }).toEqual({ source, exists: true });
      expect({ source, ignored: dockerIgnored(rules, source) }).toEqual({ source, ignored: false });
      if (source === 'src' || source === 'schemas') expect(dockerIgnored(rules, `${source}/anything/below.ts`)).toBe(false);
    }
    for (const kept of ['node_modules', 'dist', '.git', '.cache/local-services/kafka/kafka.log', 'test/unit/x.test.ts', 'deploy/compose.yaml', '.env']) {
      expect({ kept, ignored: dockerIgnored(rules, kept) }).toEqual({ kept, ignored: true });
    }
  });

  it('.dockerignore matching follows Docker: last rule wins, ! re-includes, * stays in a segment, ** spans', () => {
    expect(dockerIgnored(['*', '!src/'], 'src/a/b.ts')).toBe(false);
    expect(dockerIgnored(['*', '!src/', 'src/**/*.test.ts'], 'src/a/b.test.ts')).toBe(true);
    expect(dockerIgnored(['*.md'], 'docs/a.md')).toBe(false);
    expect(dockerIgnored(['**/*.md'], 'docs/a.md')).toBe(true);
    expect(dockerIgnored(['node_modules'], 'node_modules/x/index.js')).toBe(true);
  });
});

describe('Dockerfile HEALTHCHECK', () => {
  const healthcheckStep = steps(runtime, 'HEALTHCHECK');
  const command = execForm((healthcheckStep[0]?.args ?? '').replace(/^(--\S+\s+)*CMD\s+/, '')) ?? [];
  let server: Server;
  let status = 200;
  let port = 0;
  const paths: string[] = [];
  let proc = '';

  beforeAll(async () => {
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(status).end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    proc = mkdtempSync(join(tmpdir(), 'fake-proc-'));
  });
  afterAll(async () => {
    rmSync(proc, { recursive: true, force: true });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** A fake /proc holding one process with these arguments. */
  function processes(...commandLines: string[][]): string {
    rmSync(proc, { recursive: true, force: true });
    commandLines.forEach((args, i) => {
      mkdirSync(join(proc, String(10 + i)), { recursive: true });
      writeFileSync(join(proc, String(10 + i), 'cmdline'), args.join('\0') + '\0');
    });
    mkdirSync(join(proc, 'self'), { recursive: true });
    return proc;
  }

  it('is one exec-form node command running the compiled src/healthcheck.ts, with an interval, a timeout and a start period', () => {
    expect(healthcheckStep).toHaveLength(1);
    expect(command).toEqual(['node', 'dist/healthcheck.js']);
    expect(existsSync(join(REPO, 'src', 'healthcheck.ts'))).toBe(true);
    for (const flag of ['interval', 'timeout', 'start-period']) expect(healthcheckStep[0]?.flags[flag]).toMatch(/^\d+s$/);
    expect(loadHttpPort({})).toBe(DEFAULT_HTTP_PORTS.worker);
    expect(loadHttpPort({}, 'collect')).toBe(DEFAULT_HTTP_PORTS.collect);
    expect(loadHttpPort({ HTTP_PORT: '9500' })).toBe(9500);
  });

  it.each([['worker'], ['collect'], ['dashboard']])('for the %s, probes GET /healthz on HTTP_PORT: 0 when it answers 200, 1 on 503 and when nothing listens', async (command) => {
    const procRoot = processes(['/sbin/docker-init', '--', 'node', 'dist/cli.js', command]);
    status = 200;
    expect(await healthcheck({ procRoot, port })).toBe(0);
    expect(paths.at(-1)).toBe('/healthz');
    status = 503;
    expect(await healthcheck({ procRoot, port })).toBe(1);
    expect(await healthcheck({ procRoot, port: 1 })).toBe(1);
  });

  it('passes for one-shot commands, which serve no endpoint (never marked unhealthy)', async () => {
    for (const args of [['node', 'dist/cli.js', 'migrate'], ['node', 'dist/cli.js', 'recompute', '--input', 'worker'], ['node', 'dist/cli.js', 'report', '--from', 'x']]) {
      const procRoot = processes(['/sbin/docker-init', '--', ...args]);
      expect({ args, code: await healthcheck({ procRoot, port: 1 }) }).toEqual({ args, code: 0 });
    }
    expect(isServerCommandLine(['node', '/app/dist/cli.js', 'worker'])).toBe(true);
    expect(isServerCommandLine(['node', '/app/dist/cli.js', 'collect'])).toBe(true);
    expect(isServerCommandLine(['node', 'dist/cli.js', 'dead-letters', 'list'])).toBe(false);
    expect(isServerCommandLine(['node', '/app/dist/cli.js', 'dashboard'])).toBe(true);
    expect(isServerCommandLine(['node', '/app/dist/cli.js', 'dashboard', 'hash-secret'])).toBe(false);
  });

  it("probes the dashboard on its own default health port (9466) unless HTTP_PORT is set", () => {
    expect(healthPortOf('dashboard', {})).toBe(DASHBOARD_DEFAULT_HTTP_PORT);
    expect(healthPortOf('dashboard', { HTTP_PORT: '9500' })).toBe(9500);
    expect(healthPortOf('worker', {})).toBe(DEFAULT_HTTP_PORTS.worker);
  });
});
