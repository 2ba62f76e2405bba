/** Small statistics shared by the benchmarks. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** User + system CPU time of a live process, from /proc (Linux); null elsewhere. */
export function processCpuSeconds(pid: number | undefined): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
  } catch {
    return null;
  }
}

/**
 * The process listening on a local TCP address (`host:port` or a URL), from `ss` (Linux); null
 * when the service is elsewhere or `ss` cannot tell. Used to read each service's own CPU time.
 */
export function listenerPid(address: string): number | null {
  const match = /^(?:\w+:\/\/)?(?:[^@/]*@)?([^:/]+):(\d+)/.exec(address);
  if (!match || !['127.0.0.1', 'localhost', '::1'].includes(match[1] as string)) return null;
  try {
    const out = execFileSync('ss', ['-Hltnp', `sport = :${match[2]}`], { encoding: 'utf8' });
    const pid = /pid=(\d+)/.exec(out);
    return pid ? Number(pid[1]) : null;
  } catch {
    return null;
  }
}
