/**
 * Progress of a long command on stderr: a cli-progress bar on a terminal; elsewhere (a log file,
 * a CI job, `kubectl logs`) a plain line every 10 s, so a run that takes an hour shows it is
 * alive without filling the log with bar redraws.
 */
import { SingleBar } from 'cli-progress';

export interface ProgressOptions {
  /** Bar on a terminal, lines otherwise. Default: whether stderr is a terminal. */
  tty?: boolean;
  /** cli-progress format of the bar; its payload fields are those passed to `update`. */
  barFormat: string;
  /** The text of a progress line, from the current value, total (0 when unknown) and fields. */
  line: (value: number, total: number, fields: Record<string, string | number>) => string;
  /** Between lines; default 10 s. */
  intervalMs?: number;
  /** Where lines go; stderr by default. */
  write?: (text: string) => void;
}

export interface Progress {
  /** Whether a bar owns the terminal (other stderr text should wait until `stop`). */
  readonly isBar: boolean;
  start(total: number, fields?: Record<string, string | number>): void;
  update(value: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export const PROGRESS_LINE_MS = 10_000;

export function createProgress(options: ProgressOptions): Progress {
  if (options.tty ?? process.stderr.isTTY) {
    const bar = new SingleBar({ stream: process.stderr, format: options.barFormat, hideCursor: true, clearOnComplete: true });
    return {
      isBar: true,
      start: (total, fields) => bar.start(total, 0, fields),
      update: (value, fields) => bar.update(value, fields),
      stop: () => bar.stop(),
    };
  }
  const write = options.write ?? ((text: string) => void process.stderr.write(text));
  let value = 0;
  let total = 0;
  let fields: Record<string, string | number> = {};
  let timer: NodeJS.Timeout | null = null;
  return {
    isBar: false,
    start(newTotal, newFields) {
      total = newTotal;
      value = 0;
      fields = { ...fields, ...newFields };
      // unref: a progress line must never keep the process alive on its own.
      timer ??= setInterval(() => write(`${options.line(value, total, fields)}\n`), options.intervalMs ?? PROGRESS_LINE_MS).unref();
    },
    update(newValue, newFields) {
      value = newValue;
      if (newFields) fields = { ...fields, ...newFields };
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}

/** `12.3 MB` style byte counts for progress lines. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
