/** bench/proc.ts: what the bench reads from /proc (CPU ticks, a process's descendants, RSS). */
import { spawn } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { CLK_TCK, cpuSecondsBetween, cpuTicks, parseStat, processTree, rss } from '../../bench/proc.js';

const children: Array<ReturnType<typeof spawn>> = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

it('reads utime, stime and the parent from a stat line whose name holds spaces and parentheses', () => {
  // Fields 1–17 of a real line, the name "(a) b)" (as a thread may name itself).
  const line = '4242 ((a) b)) S 17 4242 4242 0 -1 4194560 1000 0 0 0 731 52 3 1 20 0 11 0 100 0 0';
  expect(parseStat(line)).toEqual({ ppid: 17, utime: 731, stime: 52 });
});

it('finds a process and its descendants, and nothing else', async () => {
  // sh starts a sleep as its child; the sleep is this process's grandchild.
  const sh = spawn('sh', ['-c', 'sleep 30 & wait'], { stdio: 'ignore' });
  children.push(sh);
  let tree: number[] = [];
  for (let i = 0; i < 100 && tree.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 20));
    tree = processTree([sh.pid!]);
  }
  expect(tree[0]).toBe(sh.pid);
  expect(tree).toHaveLength(2);
  expect(tree).not.toContain(process.pid);
  expect(processTree([process.pid])).toEqual(expect.arrayContaining([process.pid, ...tree]));
});

it('counts CPU time of the processes present in both readings, in seconds', () => {
  const before = new Map([
    [1, 100],
    [2, 50],
  ]);
  const after = new Map([
    [1, 100 + CLK_TCK],
    [3, 9999],
  ]);
  expect(cpuSecondsBetween(before, after)).toBe(1);
  const own = cpuTicks([process.pid]).get(process.pid);
  expect(own).toBeGreaterThan(0);
  expect(rss([process.pid])).toBeGreaterThan(1024 * 1024);
});
