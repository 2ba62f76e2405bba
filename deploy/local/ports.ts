/** Loopback ports: is one free, pick one, and is something answering on one. */
import net from 'node:net';

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** The preferred port when free (stable addresses are easier to read), else any free one. */
export async function pickPort(preferred: number, avoid: number[] = []): Promise<number> {
  if (!avoid.includes(preferred) && (await isPortFree(preferred))) return preferred;
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port > 0 && !avoid.includes(port)) return port;
  }
}

/** Sends `payload` and resolves with what came back first, or undefined on any failure. */
export function tcpExchange(port: number, payload: string, timeoutMs = 1000, host = '127.0.0.1'): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (answer?: string): void => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done());
    socket.once('error', () => done());
    socket.once('connect', () => socket.write(payload));
    socket.once('data', (data) => done(data.toString('utf8')));
  });
}
