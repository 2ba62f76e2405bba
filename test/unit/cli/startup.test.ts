/**
 * `--help`, `--version` and usage errors must not load the clients the commands use: kafkajs,
 * ioredis, @clickhouse/client, zod (configuration), pino, fastify, prom-client together took
 * `sessionizer --version` from about 0.1 s to 0.4 s, and to 3–4.5 s on a loaded machine.
 * Each command loads its own module when it runs. (Timings themselves: `npm run bench:startup`.)
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const REPO = join(__dirname, '..', '..', '..');
const HEAVY = ['kafkajs', 'ioredis', '@clickhouse/client', 'zod', 'pino', 'fastify', 'prom-client', 'maxmind'];

/** The packages under node_modules that running the CLI with `args` loaded. */
function packagesLoadedBy(args: string[]): string[] {
  const script = `
    const { main } = require(${JSON.stringify(join(REPO, 'src', 'cli.ts'))});
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = () => true;
    process.stderr.write = () => true;
    main(['node', 'sessionizer', ...${JSON.stringify(args)}]).then(() => {
      const names = new Set();
      for (const file of Object.keys(require.cache)) {
        const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(file.slice(file.lastIndexOf('node_modules/')));
        if (m && !file.includes('ts-node') && !file.includes('typescript')) names.add(m[1]);
      }
      write(JSON.stringify([...names]) + String.fromCharCode(10));
      process.exit(0);
    });`;
  const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { cwd: REPO, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as string[];
}

describe('start-up loads only what the command needs', () => {
  it.each([[['--help']], [['--version']], [['report', '--help']], [['worker', '--bogus']]])('%j loads no client library', (args) => {
    const loaded = packagesLoadedBy(args);
    expect(loaded).toContain('commander');
    expect(loaded.filter((name) => HEAVY.includes(name))).toEqual([]);
  }, 60_000);

  it('a command loads its clients when it runs', () => {
    // recompute without --input stops with a usage error after loading nothing; with an input it
    // runs, and so must have loaded its module (zod for the events).
    const loaded = packagesLoadedBy(['recompute', '--input', join(REPO, 'examples', 'events.ndjson'), '--output', '/dev/null']);
    expect(loaded).toContain('zod');
  }, 60_000);
});
