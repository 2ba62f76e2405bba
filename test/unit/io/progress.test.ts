/** Progress lines when stderr is not a terminal (src/io/progress.ts). */
import { setTimeout as sleep } from 'node:timers/promises';
import { createProgress, formatBytes } from '../../../src/io/progress';

it('writes a line per interval with the latest value, and none after stop', async () => {
  const lines: string[] = [];
  const progress = createProgress({ tty: false, barFormat: '', line: (v, t, f) => `${f.phase}: ${v}/${t}`, intervalMs: 40, write: (text) => void lines.push(text) });
  expect(progress.isBar).toBe(false);
  progress.start(10, { phase: 'reading' });
  progress.update(3);
  await sleep(60);
  progress.update(7, { phase: 'sorting' });
  await sleep(40);
  progress.stop();
  const count = lines.length;
  await sleep(100);
  expect(lines.length).toBe(count);
  expect(lines[0]).toBe('reading: 3/10\n');
  expect(lines).toContain('sorting: 7/10\n');
});

it('formats byte counts', () => {
  expect(formatBytes(512)).toBe('512 B');
  expect(formatBytes(100 * 1024 * 1024)).toBe('100.0 MiB');
});
