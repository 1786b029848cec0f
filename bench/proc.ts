/**
 * What the bench reads from /proc about the processes it measures: CPU time (utime + stime of
 * /proc/<pid>/stat, in clock ticks), resident memory (VmRSS, VmHWM of /proc/<pid>/status), and
 * a process's descendants (node:cluster workers, nginx's workers), found by walking every
 * /proc/<pid>/stat for its parent: /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN,
 * which not every kernel has. Linux only, as the bench is.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** The fields of a /proc/<pid>/stat line the bench uses. The name (field 2) may hold spaces and parentheses: fields are counted after its last ')'. */
export function parseStat(line: string): { ppid: number; utime: number; stime: number } {
  const rest = line.slice(line.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): field n is rest[n - 3].
  return { ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]) };
}

function readStat(pid: number): ReturnType<typeof parseStat> | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // gone
  }
}

/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`; 100 on every Linux the bench has met). */
export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** The given processes and all their descendants (those alive now). */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const todo = roots.filter((pid) => readStat(pid) !== undefined);
  while (todo.length > 0) {
    const pid = todo.shift()!;
    if (out.includes(pid)) continue;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** utime + stime of each process, in clock ticks (a process that has gone is left out). */
export function cpuTicks(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const s = readStat(pid);
    if (s) out.set(pid, s.utime + s.stime);
  }
  return out;
}

/** CPU seconds the processes used between two cpuTicks readings (only those present in both). */
export function cpuSecondsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, t] of after) {
    const b = before.get(pid);
    if (b !== undefined) ticks += t - b;
  }
  return ticks / CLK_TCK;
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident memory now (VmRSS), bytes, summed over the processes. */
export const rss = (pids: readonly number[]): number => pids.reduce((a, pid) => a + statusKb(pid, 'VmRSS') * 1024, 0);

/** Peak resident memory since start or the last resetPeakRss (VmHWM), bytes, summed over the processes. */
export const peakRss = (pids: readonly number[]): number => pids.reduce((a, pid) => a + statusKb(pid, 'VmHWM') * 1024, 0);

/** Resets the processes' peak RSS to their RSS now, so the next reading covers one row only. */
export function resetPeakRss(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      /* not permitted or gone: the peak then covers the process's life */
    }
  }
}

/** The CPUs this process may run on (Cpus_allowed_list of /proc/self/status). */
export function allowedCpus(): number[] {
  const m = /Cpus_allowed_list:\s+(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  const out: number[] = [];
  for (const part of (m?.[1] ?? '').split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}

/** Pins every thread of the processes to the CPUs in `list` ("1", "0-2"); threads they start later inherit it. */
export function pin(pids: readonly number[], list: string): void {
  for (const pid of pids) {
    // A thread (or the process) that exits while taskset walks them fails that call: try again.
    for (let attempt = 0; ; attempt++) {
      const r = spawnSync('taskset', ['-a', '-c', '-p', list, String(pid)], { encoding: 'utf8' });
      if (r.status === 0 || !readStat(pid)) break;
      if (attempt >= 3) throw new Error(`taskset -a -c -p ${list} ${pid} failed: ${r.stderr}`);
    }
  }
}
