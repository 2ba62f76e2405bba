/**
 * Buffered line output that honours back-pressure: lines are collected into chunks and each
 * chunk waits for the stream to drain, so a slow consumer (a pipe, a disk) bounds our memory.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';

const CHUNK_CHARS = 1 << 20;

export class LineWriter {
  private chunk = '';

  constructor(private readonly output: Writable) {}

  /** Adds one line; resolves at once unless a full chunk had to wait for the stream. */
  async write(line: string): Promise<void> {
    this.chunk += line + '\n';
    if (this.chunk.length >= CHUNK_CHARS) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.chunk) return;
    const text = this.chunk;
    this.chunk = '';
    if (!this.output.write(text)) await once(this.output, 'drain');
  }

  /**
   * Flushes, then ends the stream and resolves when everything was handed to the OS. The
   * process's stdout is never ended (Node keeps it open); we wait for its last write instead.
   */
  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve, reject) => {
      this.output.once('error', reject);
      if (this.output === process.stdout) this.output.write('', () => resolve());
      else this.output.end(() => resolve());
    });
  }
}
