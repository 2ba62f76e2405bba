/**
 * A TCP proxy on loopback that a test can cut and restore, to play a dependency going down
 * (ClickHouse, Redis) without stopping the shared server other tests use; it can also hold every
 * answer back for a while, to play a slow one.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    /** Each piece of the server's answer reaches the client this much later (order kept). */
    private readonly responseDelayMs = 0,
  ) {}

  /** Starts listening (on the same port as before after a `cut`). */
  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.pipe(upstream);
      if (this.responseDelayMs === 0) upstream.pipe(client);
      else {
        const later = (fn: () => void) => setTimeout(fn, this.responseDelayMs);
        upstream.on('data', (chunk: Buffer) => later(() => client.writable && client.write(chunk)));
        upstream.on('end', () => later(() => client.end()));
      }
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Refuses new connections and breaks the open ones. */
  async cut(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
