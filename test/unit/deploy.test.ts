/**
 * deploy/: no cluster, Docker engine or systemd runs here, so every manifest is parsed and
 * checked against the code's contract: ports, probe paths, environment names, the embedded
 * nginx/Envoy/sessiongate configurations (identical to the tested ones, and valid), metrics.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { nginxBinary, ROOT, tempDir } from '../../harness/processes.js';
import { kubernetesManifests, LOGIN_SERVICE_LABEL } from '../../scripts/gen-kubernetes.js';
import { ENV_KEYS, isLoopback, loadConfig } from '../../src/config.js';
import { createMetrics } from '../../src/ops/metrics.js';

type Obj = Record<string, any>;
const file = (p: string) => readFileSync(join(ROOT, p), 'utf8');
/** Kubernetes reads YAML 1.1 (sigs.k8s.io/yaml): `defaultMode: 0440` is octal there, 288. */
const parseK8s = (text: string) => parseAllDocuments(text, { version: '1.1' });
function docs(p: string): Obj[] {
  return parseK8s(file(p)).map((d) => {
    expect(d.errors, p).toEqual([]);
    return d.toJS() as Obj;
  });
}
const K8S = ['nginx-sidecar', 'envoy-sidecar', 'servicemonitor'].map((f) => `deploy/kubernetes/${f}.yaml`);
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
    ['deploy/kubernetes/nginx-sidecar.yaml', 'sessiongate-config'],
    ['deploy/kubernetes/envoy-sidecar.yaml', 'sessiongate-envoy-config'],
  ])('the sessiongate configuration of %s is valid', (f, name) => {
    const dir = tempDir('sg-k8s-config-');
    // Password files as the Secret would mount them.
    writeFileSync(join(dir, 'redis-password'), 'pw\n');
    writeFileSync(join(dir, 'redis-sentinel-password'), 'pw2\n');
    const text = configMap(name, f)['data']['sessiongate.yaml'].replaceAll('/etc/sessiongate/secrets', dir);
    writeFileSync(join(dir, 'sessiongate.yaml'), text);
    const r = loadConfig({ file: join(dir, 'sessiongate.yaml'), env: { SESSIONGATE_SECRET: 'k'.repeat(40), SESSIONGATE_LOGIN_TOKEN: 'l'.repeat(20) } });
    expect(r.ok ? [] : r.problems).toEqual([]);
    if (!r.ok) return;
    expect(r.config.store.kind).toBe('redis-sentinel');
    expect(r.config.listen).toMatchObject({ host: '0.0.0.0', adminHost: '0.0.0.0', adminPort: 9182 });
  });

  it('the ServiceMonitor scrapes the metrics Service by its labels and port', () => {
    const sm = byKind('ServiceMonitor')[0]!;
    const svc = byKind('Service').find((s) => s['metadata'].labels?.['app.kubernetes.io/component'] === 'sessiongate-metrics')!;
    expect(svc['metadata'].labels).toMatchObject(sm['spec'].selector.matchLabels);
    expect(svc['spec'].ports.map((p: Obj) => p.name)).toContain(sm['spec'].endpoints[0].port);
    expect(sm['spec'].endpoints[0].path).toBe('/metrics');
  });
});

// ---------------------------------------------------------------------------------------------
// The pods as Kubernetes would run them: sessiongate's effective configuration (the image's
// environment, the container's, the mounted ConfigMap), the secret files as kubelet writes them,
// and what reaches which port.

/** deploy/Dockerfile's ENV: the container starts with it, under the manifest's own env. */
function imageEnv(): Record<string, string> {
  const text = file('deploy/Dockerfile').replace(/\\\n/g, ' ');
  const env: Record<string, string> = {};
  for (const line of text.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const pair of line.slice(4).trim().split(/\s+/)) {
      const [k, ...v] = pair.split('=');
      env[k!] = v.join('=');
    }
  }
  return env;
}

interface SgPod {
  where: string;
  workload: Obj;
  pod: Obj;
  sg: Obj;
  /** The ConfigMaps applied with it (same file, or same docs page). */
  configMaps: Obj[];
}
function sessiongatePods(where: string, objects: Obj[]): SgPod[] {
  const configMaps = objects.filter((o) => o['kind'] === 'ConfigMap');
  return objects
    .filter((o) => ['Deployment', 'StatefulSet'].includes(o['kind']))
    .flatMap((workload) => {
      const pod = workload['spec'].template;
      const sg = pod.spec.containers.find((c: Obj) => c.name === 'sessiongate' || String(c.image ?? '').includes('sessiongate'));
      return sg ? [{ where: `${where}: ${workload['metadata'].name}`, workload, pod, sg, configMaps }] : [];
    });
}

/** sessiongate's configuration in that pod, loaded by sessiongate's own loader; secret files are stand-ins. */
function effectiveConfig(p: SgPod) {
  const volumes: Obj[] = p.pod.spec.volumes ?? [];
  const mounts: Obj[] = p.sg.volumeMounts ?? [];
  const env: Record<string, string> = { ...imageEnv() };
  for (const e of p.sg.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  const dir = tempDir('sg-k8s-pod-');
  const secretMounts = mounts.filter((m) => volumes.find((v) => v.name === m.name)?.secret).map((m) => m.mountPath as string);
  const relocate = (text: string) => secretMounts.reduce((t, m, i) => t.replaceAll(`${m}/`, `${dir}/secret-${i}/`), text);
  const args: string[] = p.sg.args ?? [];
  const at = args.indexOf('--config');
  const configPath = at >= 0 ? args[at + 1] : env['SESSIONGATE_CONFIG'];
  delete env['SESSIONGATE_CONFIG'];
  let configFile: string | undefined;
  if (configPath) {
    const mount = mounts.find((m) => configPath.startsWith(`${m.mountPath}/`));
    const source = volumes.find((v) => v.name === mount?.name)?.configMap;
    const rel = configPath.slice(String(mount?.mountPath).length + 1);
    const key = (source?.items as Obj[] | undefined)?.find((i) => i.path === rel)?.key ?? rel;
    const text = p.configMaps.find((c) => c['metadata'].name === source?.name)?.['data']?.[key];
    if (typeof text !== 'string') throw new Error(`${p.where}: --config ${configPath} is not a ConfigMap key applied with it: the store cannot be told`);
    configFile = join(dir, 'sessiongate.yaml');
    writeFileSync(configFile, relocate(text));
  }
  for (const [k, v] of Object.entries(env)) env[k] = relocate(v);
  // Every file the configuration names in a Secret's mount: a stand-in long enough for any secret.
  const named = [
    ...`${configFile ? readFileSync(configFile, 'utf8') : ''}\n${Object.values(env).join('\n')}`.matchAll(new RegExp(`${dir}/secret-\\d+/[\\w.-]+`, 'g')),
  ];
  for (const [path] of named) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${'s'.repeat(48)}\n`);
  }
  const r = loadConfig({ file: configFile, env });
  if (!r.ok) throw new Error(`${p.where}: ${r.problems.join('; ')}`);
  return r.config;
}

/** Why this workload would log users out at random: several replicas, each with its own memory store. */
function storeRefusal(p: SgPod): string | null {
  const replicas = p.workload['spec'].replicas ?? 1;
  const store = effectiveConfig(p).store.kind;
  return replicas > 1 && store === 'memory' ? `${p.where}: replicas: ${replicas} with the memory store (each pod its own sessions)` : null;
}

/** Every ```yaml block of README.md and docs/ that runs sessiongate in a Deployment or StatefulSet. */
function documentedPods(): SgPod[] {
  const pages = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  return pages.flatMap((page) => {
    const blocks = [...file(page).matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
    const objects = blocks
      .filter((b) => /^kind:\s*(Deployment|StatefulSet|ConfigMap)\b/m.test(b))
      .flatMap((b) =>
        parseK8s(b).map((d) => {
          expect(d.errors, page).toEqual([]);
          return d.toJS() as Obj;
        }),
      )
      .filter((o) => o && typeof o === 'object');
    return sessiongatePods(page, objects);
  });
}

const shippedPods = K8S.flatMap((f) => sessiongatePods(f, docs(f)));

/**
 * Reads a file as the pod's sessiongate process would: the file as kubelet writes a secret
 * volume's (owner root; with an fsGroup, that group and the group read bit OR'd in, r--r----- for
 * a read-only volume, per the PodSecurityContext.fsGroup reference), then a child process that
 * takes runAsGroup, fsGroup as its supplementary group and runAsUser (libuv's uid/gid spawn
 * options drop every supplementary group, so the child does it itself) and reads.
 */
function readAsPod(content: string, k: { defaultMode: number; fsGroup: number | undefined; uid: number; gid: number }) {
  const dir = tempDir('sg-k8s-secret-');
  const path = join(dir, 'secret');
  writeFileSync(path, content);
  chownSync(path, 0, k.fsGroup ?? 0);
  chmodSync(path, k.fsGroup === undefined ? k.defaultMode : k.defaultMode | 0o440);
  const groups = k.fsGroup === undefined ? [] : [k.fsGroup];
  const code = `
    const [path, uid, gid, groups] = process.argv.slice(1);
    process.setgroups(JSON.parse(groups)); process.setgid(Number(gid)); process.setuid(Number(uid));
    const ids = { uid: process.getuid(), euid: process.geteuid(), gid: process.getgid(), groups: process.getgroups() };
    try { console.log(JSON.stringify({ ...ids, read: require('node:fs').readFileSync(path, 'utf8') })); }
    catch (e) { console.log(JSON.stringify({ ...ids, error: e.code })); }`;
  const r = spawnSync(process.execPath, ['-e', code, path, String(k.uid), String(k.gid), JSON.stringify(groups)], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { uid: number; euid: number; gid: number; groups: number[]; read?: string; error?: string };
}

/** USER node of deploy/Dockerfile: the node user of node:20-bookworm-slim, 1000:1000. */
const IMAGE_USER = { uid: 1000, gid: 1000 };

/** The pod's view of sessiongate's secret volume: mode, owner group, the process's user and groups. */
function secretAsMounted(p: SgPod) {
  const file = p.sg.env.find((e: Obj) => e.name === 'SESSIONGATE_SECRET_FILE').value as string;
  const mount = p.sg.volumeMounts.find((m: Obj) => file.startsWith(`${m.mountPath}/`));
  const volume = p.pod.spec.volumes.find((v: Obj) => v.name === mount.name);
  const podSc = p.pod.spec.securityContext ?? {};
  const sc = { ...podSc, ...(p.sg.securityContext ?? {}) };
  return {
    defaultMode: (volume.secret.defaultMode as number | undefined) ?? 0o644, // the API's default
    fsGroup: podSc.fsGroup as number | undefined,
    // Unset, they are the image's user (deploy/Dockerfile: USER node) and that user's group.
    uid: (sc.runAsUser as number | undefined) ?? IMAGE_USER.uid,
    gid: (sc.runAsGroup as number | undefined) ?? IMAGE_USER.gid,
  };
}

/** Which ingress rules of a NetworkPolicy admit a container port (a rule without ports admits all). */
const admits = (rule: Obj, port: Obj) => !rule['ports']?.length || rule['ports'].some((p: Obj) => p.port === port.name || p.port === port.containerPort);
const matches = (selector: Obj, labels: Obj) =>
  Object.entries(selector['matchLabels'] ?? {}).every(([k, v]) => labels[k] === v) && !selector['matchExpressions'];

describe('deploy/kubernetes as the pods run', () => {
  it('finds every shipped sessiongate pod', () => {
    expect(shippedPods.map((p) => p.where)).toEqual([
      'deploy/kubernetes/nginx-sidecar.yaml: app-with-sessiongate-nginx',
      'deploy/kubernetes/envoy-sidecar.yaml: app-with-sessiongate-envoy',
    ]);
  });

  it.each([...shippedPods, ...documentedPods()].map((p) => [p.where, p] as const))('%s: more than one replica only with a shared store', (_w, p) => {
    expect(storeRefusal(p)).toBeNull();
  });

  it('refuses a manifest that pairs replicas > 1 with the memory store, from the ConfigMap or the environment', () => {
    const p = shippedPods[0]!;
    expect(p.workload['spec'].replicas).toBeGreaterThan(1);
    const memory = structuredClone(p);
    for (const cm of memory.configMaps) {
      for (const [k, v] of Object.entries(cm['data'] ?? {})) cm['data'][k] = String(v).replace(/^store: .*$/m, 'store: memory');
    }
    expect(storeRefusal(memory)).toMatch(/replicas: 2 with the memory store/);
    const byEnv = structuredClone(p);
    byEnv.sg.env.push({ name: 'SESSIONGATE_STORE', value: 'memory' });
    expect(storeRefusal(byEnv)).toMatch(/replicas: 2 with the memory store/);
    // No configuration at all is the default store, memory.
    const bare = structuredClone(p);
    bare.sg.args = [];
    expect(storeRefusal(bare)).toMatch(/memory store/);
  });

  it.each(shippedPods.map((p) => [p.where, p] as const))('%s: sessiongate can read its secret files as kubelet mounts them', (_w, p) => {
    const k = secretAsMounted(p);
    const r = readAsPod('s3cret\n', k);
    expect(r).toMatchObject({ uid: k.uid, euid: k.uid, gid: k.gid });
    expect(r.uid).not.toBe(0);
    if (k.fsGroup !== undefined) expect(r.groups).toContain(k.fsGroup);
    expect(r.error).toBeUndefined();
    expect(r.read).toBe('s3cret\n');
  });

  it('the check fails for the old volume (0400, runAsUser 1000, no fsGroup): the file is root:root', () => {
    const r = readAsPod('s3cret\n', { defaultMode: 0o400, fsGroup: undefined, uid: 1000, gid: 1000 });
    // getgroups() may list the effective gid itself; nothing else.
    expect(r).toMatchObject({ uid: 1000, euid: 1000, gid: 1000, error: 'EACCES' });
    expect(r.groups.filter((g) => g !== 1000)).toEqual([]);
    expect(r.read).toBeUndefined();
  });

  it.each(shippedPods.map((p) => [p.where, p] as const))(
    '%s: the API token API is in no Service and no containerPort; the admin Service is metrics only',
    (_w, p) => {
      const config = effectiveConfig(p);
      const listen = config.listen as unknown as Record<string, unknown>;
      // listen.api_host/api_port: the token API's own listener, loopback by default.
      const apiHost = (listen['apiHost'] as string | undefined) ?? '127.0.0.1';
      const apiPort = (listen['apiPort'] as number | undefined) ?? 9183;
      expect(isLoopback(apiHost), `token API on ${apiHost}`).toBe(true);
      const podPorts: Obj[] = p.pod.spec.containers.flatMap((c: Obj) => c.ports ?? []);
      expect(podPorts.map((x) => x.containerPort)).not.toContain(apiPort);
      const admin = p.sg.ports.find((x: Obj) => x.containerPort === config.listen.adminPort);
      expect(p.sg.livenessProbe.httpGet.port).toBe(admin.name);
      expect(p.sg.readinessProbe.httpGet.port).toBe(admin.name);
      const labels = p.pod.metadata.labels;
      const fileObjects = docs(p.where.split(':')[0]!);
      const services = fileObjects.filter((o) => o['kind'] === 'Service' && matches({ matchLabels: o['spec'].selector }, labels));
      for (const s of services) {
        for (const port of s['spec'].ports) {
          const target = podPorts.find((x) => x.name === port.targetPort || x.containerPort === port.targetPort);
          expect(target, `${s['metadata'].name}:${port.port}`).toBeDefined();
          expect([port.port, target?.containerPort]).not.toContain(apiPort);
        }
      }
      const adminServices = services.filter((s) => s['spec'].ports.some((x: Obj) => x.targetPort === admin.name || x.targetPort === admin.containerPort));
      expect(adminServices.map((s) => s['metadata'].labels?.['app.kubernetes.io/component'])).toEqual(['sessiongate-metrics']);
      expect(adminServices[0]!['spec'].ports).toHaveLength(1);
      expect(byKind('ServiceMonitor')[0]!['spec'].endpoints).toEqual([
        expect.objectContaining({ port: adminServices[0]!['spec'].ports[0].name, path: '/metrics' }),
      ]);
    },
  );

  it.each(shippedPods.map((p) => [p.where, p] as const))('%s: the login service reaches POST /~session, and only it (NetworkPolicy)', (_w, p) => {
    const config = effectiveConfig(p);
    const fileObjects = docs(p.where.split(':')[0]!);
    const labels = p.pod.metadata.labels;
    const http = p.sg.ports.find((x: Obj) => x.containerPort === config.listen.httpPort);
    const grpc = p.sg.ports.find((x: Obj) => x.containerPort === config.listen.grpcPort);
    // sessiongate listens on the pod IP (the login service comes from another pod) ...
    expect(isLoopback(config.listen.host)).toBe(false);
    // ... a Service takes the login service there ...
    const sessionApi = fileObjects.filter(
      (o) => o['kind'] === 'Service' && matches({ matchLabels: o['spec'].selector }, labels) && o['spec'].ports.some((x: Obj) => x.targetPort === http.name),
    );
    expect(sessionApi.map((s) => s['metadata'].name)).toEqual([expect.stringMatching(/-sessiongate-session-api$/)]);
    // ... and the NetworkPolicy that selects this pod admits only pods labelled as the login service to it.
    const policies = fileObjects.filter((o) => o['kind'] === 'NetworkPolicy' && matches(o['spec'].podSelector, labels));
    expect(policies).toHaveLength(1);
    const policy = policies[0]!['spec'];
    expect(policy.policyTypes).toContain('Ingress');
    const toHttp = (policy.ingress as Obj[]).filter((rule) => admits(rule, http));
    expect(toHttp).toHaveLength(1);
    expect(toHttp[0]!['from']).toEqual([{ podSelector: { matchLabels: { ...LOGIN_SERVICE_LABEL } } }]);
    expect((policy.ingress as Obj[]).filter((rule) => admits(rule, grpc))).toEqual([]);
    // The proxy's port stays open to all, metrics to Prometheus.
    for (const name of ['http', 'admin']) {
      expect(
        (policy.ingress as Obj[]).some((rule) => !rule['from'] && admits(rule, { name })),
        name,
      ).toBe(true);
    }
    expect(file('docs/operations.md')).toContain(Object.entries(LOGIN_SERVICE_LABEL).map(([k, v]) => `${k}: "${v}"`)[0]);
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
