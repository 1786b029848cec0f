/**
 * `sessiongate demo` as a newcomer runs it: the built bin, on free ports. The curl lines it
 * prints are run as printed (a small curl reader over node:http, through nginx), then the
 * browser's way in (login redirect, form); SIGINT stops everything: nginx, the listeners, the
 * temporary directory. A port in use and a missing nginx are said plainly.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Reply, send } from '../support/http.js';
import { freePort, listening, ROOT, waitFor } from '../support/processes.js';

const BIN = join(ROOT, 'bin/sessiongate.js');

interface Demo {
  child: ChildProcess;
  out: () => string;
  err: () => string;
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** The demo's listener flags for a set of free ports. */
function portArgs(p: { nginx: number; app: number; http: number; grpc: number; admin: number; api: number }): string[] {
  return Object.entries(p).flatMap(([name, port]) => [`--${name}-port`, String(port)]);
}

function startDemo(args: string[]): Demo {
  const child = spawn(process.execPath, [BIN, 'demo', ...args], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return { child, out: () => out, err: () => err };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((res) => (child.exitCode !== null ? res(child.exitCode) : child.once('exit', (code) => res(code))));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs one printed curl line (-i, -c FILE, -b FILE, -X METHOD, one URL); the jar is a map. */
async function curl(line: string, jar: Map<string, string>): Promise<Reply> {
  const words = [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  expect(words.shift()).toBe('curl');
  let method = 'GET';
  let url = '';
  let save = false;
  let sendJar = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '-i') continue;
    else if (w === '-X') method = words[++i]!;
    else if (w === '-c') (save = true), i++;
    else if (w === '-b') (sendJar = true), i++;
    else if (w.startsWith('http://')) url = w;
    else throw new Error(`the test's curl reader does not know ${w}`);
  }
  const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const r = await send(url, { method, headers: sendJar && cookie ? [['Cookie', cookie]] : [] });
  if (save) for (const c of r.cookies) jar.set(c.split('=')[0]!, c.split(';')[0]!.slice(c.indexOf('=') + 1));
  return r;
}

describe('sessiongate demo', () => {
  let demo: Demo;
  let ports: { nginx: number; app: number; http: number; grpc: number; admin: number; api: number };

  beforeAll(async () => {
    const [nginx, app, http, grpc, admin, api] = (await distinctFreePorts(6)) as [number, number, number, number, number, number];
    ports = { nginx, app, http, grpc, admin, api };
    demo = startDemo(portArgs({ nginx, app, http, grpc, admin, api }));
    const up = await waitFor(
      () => demo.out().includes('Ctrl-C stops everything.'),
      20_000,
      () => demo.child.exitCode !== null,
    );
    if (!up) throw new Error(`the demo did not start:\n${demo.out()}\n${demo.err()}`);
  }, 30_000);

  afterAll(async () => {
    if (demo.child.exitCode === null) {
      demo.child.kill('SIGKILL');
      await exited(demo.child);
    }
  });

  it('prints the URLs, and its curl lines do what it says they do', async () => {
    const out = demo.out();
    const n = `http://127.0.0.1:${ports.nginx}`;
    expect(out).toContain(`${n}/`);
    expect(out).toContain(`http://127.0.0.1:${ports.admin}/metrics`);
    const lines = out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('curl '));
    expect(lines).toEqual([
      `curl -i ${n}/`,
      `curl -i -c jar '${n}/~session/dev?user=alice&roles=admin&rd=/'`,
      `curl -b jar ${n}/admin/`,
      `curl -b jar -X DELETE ${n}/~session`,
      `curl http://127.0.0.1:${ports.admin}/metrics`,
    ]);
    const jar = new Map<string, string>();
    expect((await curl(lines[0]!, jar)).status).toBe(401);
    const loggedIn = await curl(lines[1]!, jar);
    expect(loggedIn.status).toBe(302);
    expect(loggedIn.headers['location']).toBe('/');
    expect(jar.get('sessiongate')).toBeTruthy();
    const echoed = await curl(lines[2]!, jar);
    expect(echoed.status).toBe(200);
    const seen = echoed.json<{ method: string; path: string; headers: Record<string, string> }>();
    expect(seen).toMatchObject({ method: 'GET', path: '/admin/' });
    expect(seen.headers['x-user-id']).toBe('alice');
    expect(seen.headers['x-user-roles']).toBe('admin');
    expect(seen.headers['cookie'] ?? '').not.toContain('sessiongate=');
    expect((await curl(lines[3]!, jar)).status).toBe(204);
    const m = await curl(lines[4]!, jar);
    expect(m.status).toBe(200);
    expect(m.body).toContain('sessiongate_decisions_total');
  });

  it("a browser's way in: / sends it to the development login form, which comes back to /", async () => {
    const n = `http://127.0.0.1:${ports.nginx}`;
    const first = await send(`${n}/`, { headers: [['Accept', 'text/html']] });
    expect(first.status).toBe(302);
    const login = new URL(first.headers['location'] as string);
    expect(`${login.origin}${login.pathname}`).toBe(`${n}/~session/dev`);
    expect(login.searchParams.get('rd')).toBe(`${n}/`);
    const form = await send(login.href);
    expect(form.status).toBe(200);
    expect(form.body).toContain(`name="rd" value="${n}/"`);
    const submitted = await send(`${n}/~session/dev?user=carol&roles=&rd=${encodeURIComponent(`${n}/`)}`);
    expect(submitted.status).toBe(302);
    expect(submitted.headers['location']).toBe(`${n}/`);
  });

  it('SIGINT stops everything: nginx (waited for), every listener, the temporary directory', async () => {
    const banner = /nginx pid (\d+), files in (\S+)\)/.exec(demo.out());
    expect(banner).not.toBeNull();
    const [pid, dir] = [Number(banner![1]), banner![2]!];
    expect(alive(pid)).toBe(true);
    expect(existsSync(dir)).toBe(true);
    demo.child.kill('SIGINT');
    expect(await exited(demo.child)).toBe(0);
    expect(demo.out()).toContain('sessiongate demo: stopped');
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    for (const p of Object.values(ports)) expect(await listening(p), String(p)).toBe(false);
  });
});

describe('sessiongate demo and SIGTERM', () => {
  it('stops the same way', async () => {
    const [nginx, app, http, grpc, admin, api] = (await distinctFreePorts(6)) as [number, number, number, number, number, number];
    const demo = startDemo(portArgs({ nginx, app, http, grpc, admin, api }));
    try {
      expect(
        await waitFor(
          () => demo.out().includes('Ctrl-C stops everything.'),
          20_000,
          () => demo.child.exitCode !== null,
        ),
      ).toBe(true);
      const [, pid, dir] = /nginx pid (\d+), files in (\S+)\)/.exec(demo.out())!;
      demo.child.kill('SIGTERM');
      expect(await exited(demo.child)).toBe(0);
      expect(alive(Number(pid))).toBe(false);
      expect(existsSync(dir!)).toBe(false);
      for (const p of [nginx, app, http, grpc, admin, api]) expect(await listening(p)).toBe(false);
    } finally {
      if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
    }
  }, 30_000);
});

describe('sessiongate demo refuses to start, saying why', () => {
  it('a port in use: which one, and the flag that moves it; nothing left listening', async () => {
    const [nginx, app, http, grpc, admin, api] = (await distinctFreePorts(6)) as [number, number, number, number, number, number];
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(app, '127.0.0.1', r));
    try {
      const r = spawnSync(
        process.execPath,
        [
          BIN,
          'demo',
          '--port',
          String(nginx),
          '--app-port',
          String(app),
          '--http-port',
          String(http),
          '--grpc-port',
          String(grpc),
          '--admin-port',
          String(admin),
          '--api-port',
          String(api),
        ],
        {
          encoding: 'utf8',
          env: { PATH: process.env['PATH'] ?? '' },
          timeout: 20_000,
        },
      );
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`port ${app} on 127.0.0.1 (the echo application) is in use: stop what listens there, or choose another with --app-port PORT`);
      for (const p of [nginx, http, grpc, admin, api]) expect(await listening(p)).toBe(false);
    } finally {
      busy.close();
    }
  });

  it('no nginx: how to install it', () => {
    const r = spawnSync(process.execPath, [BIN, 'demo', '--nginx', '/nonexistent/nginx'], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '' },
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('apt-get install nginx');
  });
});
