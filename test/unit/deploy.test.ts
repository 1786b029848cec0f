/**
 * deploy/: no cluster, Docker engine or systemd runs here, so every manifest is parsed and
 * checked against the code's contract: ports, probe paths, environment names, the embedded
 * nginx/Envoy/sessiongate configurations (identical to the tested ones, and valid), metrics.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { nginxBinary, ROOT, tempDir } from '../../harness/processes.js';
import { kubernetesManifests } from '../../scripts/gen-kubernetes.js';
import { ENV_KEYS, loadConfig } from '../../src/config.js';
import { createMetrics } from '../../src/ops/metrics.js';

type Obj = Record<string, any>;
const file = (p: string) => readFileSync(join(ROOT, p), 'utf8');
function docs(p: string): Obj[] {
  return parseAllDocuments(file(p)).map((d) => {
    expect(d.errors, p).toEqual([]);
    return d.toJS() as Obj;
  });
}
const K8S = ['nginx-sidecar', 'envoy-sidecar', 'redis-sentinel-config', 'servicemonitor'].map((f) => `deploy/kubernetes/${f}.yaml`);
const all = K8S.flatMap((f) => docs(f).map((d) => ({ file: f, doc: d })));
const byKind = (kind: string) => all.filter((x) => x.doc['kind'] === kind).map((x) => x.doc);
const configMap = (name: string, f?: string) => all.find((x) => x.doc['kind'] === 'ConfigMap' && x.doc['metadata'].name === name && (!f || x.file === f))!.doc;
const ENV_NAMES = new Set([...Object.keys(ENV_KEYS), 'SESSIONGATE_CONFIG']);

describe('deploy/kubernetes', () => {
  it('every document is a named Kubernetes object', () => {
    expect(all.length).toBeGreaterThanOrEqual(8);
    for (const { file, doc } of all) {
      expect(doc['apiVersion'], file).toEqual(expect.any(String));
      expect(doc['kind'], file).toEqual(expect.any(String));
      expect(doc['metadata']?.name, file).toEqual(expect.any(String));
    }
  });

  it.each(byKind('Deployment').map((d) => [d['metadata'].name, d] as const))('%s runs sessiongate by its contract', (_n, d) => {
    const pod = d['spec'].template;
    expect(d['spec'].selector.matchLabels).toEqual(pod.metadata.labels);
    expect(pod.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9182', 'prometheus.io/path': '/metrics' });
    const sg = pod.spec.containers.find((c: Obj) => c.name === 'sessiongate');
    const ports = Object.fromEntries(sg.ports.map((p: Obj) => [p.name, p.containerPort]));
    expect(ports).toEqual({ 'sg-http': 9180, 'sg-grpc': 9181, admin: 9182 });
    for (const e of sg.env) expect(ENV_NAMES, e.name).toContain(e.name);
    expect(sg.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(sg.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(sg.resources.requests).toBeDefined();
    expect(sg.resources.limits).toBeDefined();
    expect(sg.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    // Secrets as files from a Secret, never as literal environment values.
    const secretVolume = pod.spec.volumes.find((v: Obj) => v.secret);
    expect(secretVolume.secret.secretName).toBe('sessiongate-secrets');
    const mount = sg.volumeMounts.find((m: Obj) => m.name === secretVolume.name);
    const env = Object.fromEntries(sg.env.map((e: Obj) => [e.name, e.value]));
    expect(env['SESSIONGATE_SECRET_FILE']).toBe(`${mount.mountPath}/secret`);
    expect(env['SESSIONGATE_LOGIN_TOKEN_FILE']).toBe(`${mount.mountPath}/login-token`);
    expect(env['SESSIONGATE_SECRET']).toBeUndefined();
    // Every mounted volume exists.
    const volumes = new Set(pod.spec.volumes.map((v: Obj) => v.name));
    for (const c of pod.spec.containers) for (const m of c.volumeMounts ?? []) expect(volumes, `${c.name}: ${m.name}`).toContain(m.name);
    for (const v of pod.spec.volumes.filter((x: Obj) => x.configMap)) expect(byKind('ConfigMap').map((c) => c['metadata'].name)).toContain(v.configMap.name);
  });

  it('ships the tested nginx configuration, and nginx accepts it', () => {
    const cm = configMap('sessiongate-nginx')['data'];
    expect(cm['endpoints.conf']).toBe(file('nginx/sessiongate/endpoints.conf'));
    expect(cm['protect.conf']).toBe(file('nginx/sessiongate/protect.conf'));
    const unprivileged = file('nginx/nginx.conf')
      .replace('pid logs/nginx.pid;', 'pid /tmp/nginx.pid;')
      .replace('error_log logs/error.log warn;', 'error_log /dev/stderr warn;');
    expect(
      cm['nginx.conf']
        .replace(/\n {4}client_body_temp_path[\s\S]*?scgi_temp_path \/tmp\/scgi;/, '')
        .replace('access_log /dev/stdout;', 'access_log logs/access.log;'),
    ).toBe(unprivileged);
    const dir = tempDir('sg-k8s-nginx-');
    mkdirSync(join(dir, 'sessiongate'));
    writeFileSync(join(dir, 'nginx.conf'), cm['nginx.conf']);
    writeFileSync(join(dir, 'sessiongate/endpoints.conf'), cm['endpoints.conf']);
    writeFileSync(join(dir, 'sessiongate/protect.conf'), cm['protect.conf']);
    // Output to a file: libuv's stdio pipes are sockets, which /dev/stderr cannot be opened on.
    const out = openSync(join(dir, 'nginx-t.log'), 'w');
    spawnSync(nginxBinary(), ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', '/dev/stderr'], { stdio: ['ignore', out, out] });
    closeSync(out);
    expect(readFileSync(join(dir, 'nginx-t.log'), 'utf8')).toContain('test is successful');
  });

  it('ships the tested Envoy configuration', () => {
    expect(configMap('sessiongate-envoy')['data']['envoy.yaml']).toBe(file('envoy/envoy.yaml'));
  });

  it.each([
    ['deploy/kubernetes/nginx-sidecar.yaml', 'memory'],
    ['deploy/kubernetes/redis-sentinel-config.yaml', 'redis-sentinel'],
  ])('the sessiongate configuration of %s is valid', (f, kind) => {
    const dir = tempDir('sg-k8s-config-');
    // Password files as the Secret would mount them.
    writeFileSync(join(dir, 'redis-password'), 'pw\n');
    writeFileSync(join(dir, 'redis-sentinel-password'), 'pw2\n');
    const text = configMap('sessiongate-config', f)['data']['sessiongate.yaml'].replaceAll('/etc/sessiongate/secrets', dir);
    writeFileSync(join(dir, 'sessiongate.yaml'), text);
    const r = loadConfig({ file: join(dir, 'sessiongate.yaml'), env: { SESSIONGATE_SECRET: 'k'.repeat(40), SESSIONGATE_LOGIN_TOKEN: 'l'.repeat(20) } });
    expect(r.ok ? [] : r.problems).toEqual([]);
    if (!r.ok) return;
    expect(r.config.store.kind).toBe(kind);
    expect(r.config.listen).toMatchObject({ host: '127.0.0.1', adminHost: '0.0.0.0', adminPort: 9182 });
  });

  it('the ServiceMonitor scrapes the metrics Service by its labels and port', () => {
    const sm = byKind('ServiceMonitor')[0]!;
    const svc = byKind('Service').find((s) => s['metadata'].labels?.['app.kubernetes.io/component'] === 'sessiongate-metrics')!;
    expect(svc['metadata'].labels).toMatchObject(sm['spec'].selector.matchLabels);
    expect(svc['spec'].ports.map((p: Obj) => p.name)).toContain(sm['spec'].endpoints[0].port);
    expect(sm['spec'].endpoints[0].path).toBe('/metrics');
  });
});

describe('scripts/gen-kubernetes.ts', () => {
  it('regenerates exactly the committed manifests', () => {
    const generated = kubernetesManifests();
    expect(Object.keys(generated).sort()).toEqual([...K8S].sort());
    // After a change to nginx/, envoy/ or deploy/config.example.yaml: npm run gen:kubernetes.
    for (const [path, text] of Object.entries(generated)) expect(file(path), `${path} is stale: npm run gen:kubernetes`).toBe(text);
  });
});

describe('deploy/Dockerfile', () => {
  const text = file('deploy/Dockerfile');
  it('builds in stages and runs unprivileged with a health check on the admin port', () => {
    expect(text.match(/^FROM /gm)).toHaveLength(2);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^EXPOSE 9180 9181 9182$/m);
    expect(text).toMatch(/^HEALTHCHECK .*\n\s+CMD \["node", "bin\/sessiongate\.js", "healthcheck"/m); // test/e2e/healthcheck.test.ts runs it
    expect(text).toMatch(/^ENTRYPOINT \["node", "bin\/sessiongate.js"\]$/m);
    for (const dir of ['dist', 'bin', 'proto', 'node_modules']) expect(text).toContain(`./${dir}`);
    expect(text).toContain('npm prune --omit=dev');
  });
});

describe('deploy/systemd/sessiongate.service', () => {
  const lines = file('deploy/systemd/sessiongate.service')
    .split('\n')
    .filter((l) => /^\w+=/.test(l));
  const values = (key: string) => lines.filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
  it('reloads with SIGHUP, reads secrets from credentials, and is sandboxed', () => {
    expect(values('ExecReload')[0]).toContain('-HUP');
    expect(values('ExecStart')[0]).toContain('bin/sessiongate.js');
    for (const env of values('Environment')) expect([...ENV_NAMES, 'NODE_ENV']).toContain(env.split('=')[0]);
    expect(values('Environment')).toContain('SESSIONGATE_SECRET_FILE=%d/secret');
    for (const [k, v] of [
      ['DynamicUser', 'yes'],
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['CapabilityBoundingSet', ''],
      ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX'],
    ]) {
      expect(values(k!), k).toContain(v);
    }
  });
});

describe('deploy/grafana', () => {
  it('plots decisions by result, latency quantiles, store health and spoof attempts, from metrics that exist', async () => {
    const dash = JSON.parse(file('deploy/grafana/sessiongate-dashboard.json')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const registry = new Registry();
    createMetrics({ version: 'test' }, registry);
    const known = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    for (const p of dash.panels) {
      for (const t of p.targets) {
        for (const m of t.expr.matchAll(/sessiongate_[a-z_]+/g)) expect(known, `${p.title}: ${m[0]}`).toContain(m[0].replace(/_(bucket|count|sum)$/, ''));
      }
    }
    const titles = dash.panels.map((p) => p.title).join('\n');
    for (const t of ['Decisions by result', 'p50 / p99', 'Store health', 'Spoof attempts']) expect(titles).toContain(t);
    expect(JSON.stringify(dash)).toContain('histogram_quantile(0.99');
  });
});
