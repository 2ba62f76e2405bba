/**
 * A local stand-in for a ClickHouse server: the ClickHouse HTTP interface in front of chdb, the
 * ClickHouse engine running inside this Node process. For tests and local runs on a machine
 * without Docker, where Debian only packages a ClickHouse too old for this project
 * (DateTime64, query parameters, VersionedCollapsingMergeTree, materialized views).
 *
 *   node -r ts-node/register/transpile-only deploy/local/chdb-http-server.ts --port 18123 --data DIR
 *
 * Speaks as much of the protocol as @clickhouse/client and recalculation need (see
 * chdb/http-protocol.ts; external data in multipart/form-data bodies included), keeps
 * its data in DIR across queries and restarts, and accepts any user and password: it only ever
 * listens on a loopback address. Not for production. `npm run services:up` starts it.
 */
import http from 'node:http';
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { ChdbEngine } from './chdb/engine';
import { httpStatusFor, toClickHouseException } from './chdb/errors';
import { contentTypeFor, parseRequest, readMultipart } from './chdb/http-protocol';
import { loadChdbNative } from './chdb/native';

interface Options {
  host: string;
  port: number;
  dataPath: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { host: '127.0.0.1', port: 18123, dataPath: '' };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1] ?? ''];
    if (flag === '--host') options.host = value;
    else if (flag === '--port') options.port = Number(value);
    else if (flag === '--data') options.dataPath = value;
    else throw new Error(`unknown argument ${flag}; usage: --port N --data DIR [--host ADDR]`);
  }
  if (!options.dataPath) throw new Error('--data DIR is required');
  return options;
}

/** The request body, decompressed when the client compressed it (Content-Encoding). */
async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  let source: Readable = req;
  const encoding = (req.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding === 'gzip') source = req.pipe(zlib.createGunzip());
  else if (encoding === 'deflate') source = req.pipe(zlib.createInflate());
  else if (encoding === 'br') source = req.pipe(zlib.createBrotliDecompress());
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Compresses the response like the server does with enable_http_compression=1. */
function encodeBody(req: http.IncomingMessage, params: URLSearchParams, body: Buffer): { body: Buffer; encoding?: string } {
  if (params.get('enable_http_compression') !== '1') return { body };
  const accepted = String(req.headers['accept-encoding'] ?? '');
  if (/\bgzip\b/.test(accepted)) return { body: zlib.gzipSync(body), encoding: 'gzip' };
  if (/\bdeflate\b/.test(accepted)) return { body: zlib.deflateSync(body), encoding: 'deflate' };
  return { body };
}

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  const engine = new ChdbEngine(loadChdbNative(), options.dataPath);
  let version = 'chdb';

  const server = http.createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      // Only reached when writing the response itself failed (client went away).
      console.error(`response failed: ${error instanceof Error ? error.message : String(error)}`);
      res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const started = Date.now();
    if (url.pathname === '/ping' || req.method === 'HEAD') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' }).end('Ok.\n');
      return;
    }
    if (url.pathname !== '/' && url.pathname !== '/query') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' }).end(`There is no handle ${url.pathname}\n`);
      return;
    }
    let queryId = url.searchParams.get('query_id') ?? '';
    try {
      const body = await readBody(req);
      const contentType = String(req.headers['content-type'] ?? '');
      const multipart = /^multipart\/form-data\b/i.test(contentType) ? await readMultipart(contentType, body) : undefined;
      const parsed = parseRequest(url.searchParams, body, multipart);
      if (!parsed) {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' }).end('Ok.\n');
        return;
      }
      queryId = parsed.queryId;
      const result = await engine.execute(parsed.engine);
      const encoded = encodeBody(req, url.searchParams, result.body);
      res.writeHead(200, {
        'Content-Type': contentTypeFor(parsed.format),
        'X-ClickHouse-Format': parsed.format,
        'X-ClickHouse-Query-Id': queryId,
        'X-ClickHouse-Timezone': 'UTC',
        'X-ClickHouse-Server-Display-Name': 'chdb-http-server',
        'X-ClickHouse-Summary': JSON.stringify({
          read_rows: String(result.readRows),
          read_bytes: String(result.readBytes),
          written_rows: String(result.writtenRows),
          written_bytes: String(result.writtenBytes),
          total_rows_to_read: '0',
          elapsed_ns: String(Math.round(result.elapsedSeconds * 1e9)),
        }),
        ...(encoded.encoding ? { 'Content-Encoding': encoded.encoding } : {}),
      });
      res.end(encoded.body);
      log(req, parsed.engine.sql, 200, started);
    } catch (error) {
      const exception = toClickHouseException(error);
      const status = httpStatusFor(exception);
      res.writeHead(status, {
        'Content-Type': 'text/plain; charset=UTF-8',
        'X-ClickHouse-Exception-Code': String(exception.code),
        ...(queryId ? { 'X-ClickHouse-Query-Id': queryId } : {}),
      });
      res.end(`${exception.message} (version ${version})\n`);
      log(req, url.searchParams.get('query') ?? '(body)', status, started, exception.message);
    }
  }

  const shutdown = (signal: string): void => {
    console.log(`${signal}: stopping`);
    server.close();
    void engine.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  server.on('error', (error) => {
    console.error(`chdb-http-server: ${error.message}`);
    process.exit(1);
  });
  engine.version().then(
    (v) => {
      version = v;
      server.listen(options.port, options.host, () => {
        console.log(`chdb-http-server: ClickHouse ${version} (chdb) on http://${options.host}:${options.port}, data in ${options.dataPath}`);
      });
    },
    (error: unknown) => {
      console.error(`chdb-http-server: engine failed to start: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}

function log(req: http.IncomingMessage, sql: string, status: number, started: number, error?: string): void {
  const statement = sql.replace(/\s+/g, ' ').slice(0, 160);
  console.log(`${new Date().toISOString()} ${req.method} ${status} ${Date.now() - started}ms ${statement}${error ? ` -- ${error.split('\n')[0]}` : ''}`);
}

main();
