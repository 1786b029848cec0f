/**
 * /metrics on a running instance: the golden list of metric names and label keys, and counts
 * after a scripted mix of allowed, denied, spoofed and store-failed decisions over all three
 * transports. No label value may carry a user ID, path or session ID.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawEnvoyClient } from '../../harness/envoy-wire.js';
import { cookiePair, send } from '../../harness/http.js';
import { type Service, startService } from '../../src/main.js';
import { quietLogger, switchableStore, testConfig } from '../support/service.js';

const LOGIN_TOKEN = 'metrics-login-token-0123456789';
let svc: Service;
let grpc: RawEnvoyClient;
const store = switchableStore();
const http = () => `http://127.0.0.1:${svc.ports.http}`;

beforeAll(async () => {
  const config = testConfig({ SESSIONGATE_SECRET: 'm'.repeat(40), SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true });
  svc = await startService(config, quietLogger(), { store, registry: new Registry() });
  grpc = new RawEnvoyClient(`127.0.0.1:${svc.ports.grpc}`);
});
afterAll(async () => {
  grpc?.close();
  await svc?.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function scrape(): Promise<{ samples: Sample[]; types: Map<string, string>; text: string }> {
  const r = await send(`http://127.0.0.1:${svc.ports.admin}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toContain('text/plain');
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of r.body.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, types, text: r.body };
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

async function login(user: string): Promise<string> {
  const r = await send(`${http()}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${LOGIN_TOKEN}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ user_id: user }),
  });
  return cookiePair(r.cookies[0]!);
}
const nginx = (headers: Array<[string, string]>, uri = '/app') => send(`${http()}/auth`, { headers: [['X-Original-URI', uri], ...headers] });

const GOLDEN: Record<string, { type: string; labels: string[] }> = {
  sessiongate_build_info: { type: 'gauge', labels: ['node_version', 'version'] },
  sessiongate_decisions_total: { type: 'counter', labels: ['reason', 'result', 'transport'] },
  sessiongate_decision_duration_seconds: { type: 'histogram', labels: ['transport'] },
  sessiongate_store_operations_total: { type: 'counter', labels: ['op', 'result'] },
  sessiongate_store_duration_seconds: { type: 'histogram', labels: ['op'] },
  sessiongate_store_up: { type: 'gauge', labels: [] },
  sessiongate_store_cache_requests_total: { type: 'counter', labels: ['result'] },
  sessiongate_sessions_created_total: { type: 'counter', labels: [] },
  sessiongate_sessions_destroyed_total: { type: 'counter', labels: ['reason'] },
  sessiongate_sessions_rotated_total: { type: 'counter', labels: [] },
  sessiongate_spoof_attempts_total: { type: 'counter', labels: [] },
  sessiongate_logins_total: { type: 'counter', labels: ['reason', 'result'] },
};

describe('/metrics', () => {
  it('serves the golden list of metrics, each with its label keys and help, plus process metrics', async () => {
    const { samples, types, text } = await scrape();
    const ours = [...types.keys()].filter((n) => n.startsWith('sessiongate_')).sort();
    expect(ours).toEqual(Object.keys(GOLDEN).sort());
    for (const [name, g] of Object.entries(GOLDEN)) {
      expect(types.get(name), name).toBe(g.type);
      expect(text).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
      const series = samples.filter((s) => s.name === name || s.name.startsWith(`${name}_`));
      expect(series.length, name).toBeGreaterThan(0);
      for (const s of series)
        expect(
          Object.keys(s.labels)
            .filter((k) => k !== 'le')
            .sort(),
          name,
        ).toEqual(g.labels);
    }
    expect(types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(value(samples, 'sessiongate_build_info', { node_version: process.version })).toBe(1);
    // Histogram buckets reach down to tens of microseconds.
    expect(samples.some((s) => s.name === 'sessiongate_decision_duration_seconds_bucket' && s.labels['le'] === '0.000025')).toBe(true);
  });

  it('counts a scripted mix of decisions by transport, result and reason', async () => {
    const before = (await scrape()).samples;
    const alice = await login('alice');
    const bob = await login('bob');
    for (let i = 0; i < 3; i++) expect((await nginx([['Cookie', alice]])).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await nginx([])).status).toBe(401);
    expect(
      (
        await nginx([
          ['Cookie', bob],
          ['X-User-Id', 'root'],
        ])
      ).status,
    ).toBe(403);
    expect((await nginx([], '/~assets/a.css')).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const out = await grpc.check({ method: 'GET', path: '/app', host: 'h', headers: { cookie: bob } });
      expect('response' in out && out.response.code).toBe(0);
    }
    expect((await send(`${http()}/envoy/app`, { headers: [['x_user_id', 'root']] })).status).toBe(403);
    store.down = true;
    try {
      for (let i = 0; i < 2; i++) expect((await nginx([['Cookie', alice]])).status).toBe(500);
    } finally {
      store.down = false;
    }
    expect((await send(`${http()}/~session`, { method: 'DELETE', headers: [['Cookie', bob]] })).status).toBe(204);

    const { samples, text } = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => value(samples, name, labels) - value(before, name, labels);
    expect(delta('sessiongate_decisions_total', { transport: 'nginx', result: 'allow', reason: 'authenticated' })).toBe(3);
    expect(delta('sessiongate_decisions_total', { transport: 'nginx', result: 'allow', reason: 'public' })).toBe(1);
    expect(delta('sessiongate_decisions_total', { transport: 'nginx', result: 'deny', reason: 'no_session' })).toBe(2);
    expect(delta('sessiongate_decisions_total', { transport: 'nginx', result: 'deny', reason: 'spoofed_header' })).toBe(1);
    expect(delta('sessiongate_decisions_total', { transport: 'nginx', result: 'error', reason: 'store_unavailable' })).toBe(2);
    expect(delta('sessiongate_decisions_total', { transport: 'envoy_grpc', result: 'allow', reason: 'authenticated' })).toBe(2);
    expect(delta('sessiongate_decisions_total', { transport: 'envoy_http', result: 'deny', reason: 'spoofed_header' })).toBe(1);
    expect(delta('sessiongate_decisions_total')).toBe(12);
    expect(delta('sessiongate_decision_duration_seconds_count', { transport: 'nginx' })).toBe(9);
    expect(delta('sessiongate_decision_duration_seconds_count', { transport: 'envoy_grpc' })).toBe(2);
    expect(delta('sessiongate_spoof_attempts_total')).toBe(2);
    expect(delta('sessiongate_sessions_created_total')).toBe(2);
    expect(delta('sessiongate_sessions_destroyed_total', { reason: 'logout' })).toBe(1);
    expect(delta('sessiongate_store_operations_total', { op: 'get', result: 'error' })).toBe(2);
    expect(delta('sessiongate_store_operations_total', { op: 'get', result: 'ok' })).toBe(3 + 2 + 1); // + the logout's look for an API token
    expect(delta('sessiongate_store_operations_total', { op: 'create', result: 'ok' })).toBe(2);
    // Bounded label values: no user ID, path or session ID anywhere.
    const [id] = alice.split('=')[1]!.split('.');
    for (const secret of ['alice', 'bob', '/app', '~assets', id!]) expect(text).not.toContain(secret);
  });
});
