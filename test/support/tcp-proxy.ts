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
  /** While paused (a frozen server): connections still open, nothing flows, until `resume`. */
  private paused = false;
  private readonly waiting: Array<() => void> = [];
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
      if (this.paused) {
        client.pause();
        this.sockets.add(client);
        this.waiting.push(() => this.forward(client));
        return;
      }
      this.forward(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /**
   * Plays a frozen server (SIGSTOP): connections are still accepted, but no byte flows either
   * way until `resume()`; clients see only their own timeouts.
   */
  pause(): void {
    this.paused = true;
    for (const socket of this.sockets) socket.pause();
  }

  resume(): void {
    this.paused = false;
    for (const socket of this.sockets) if (!socket.destroyed) socket.resume();
    for (const start of this.waiting.splice(0)) start();
  }

  private forward(client: Socket): void {
    if (client.destroyed) return;
    client.resume();
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
