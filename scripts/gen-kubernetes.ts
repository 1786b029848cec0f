/**
 * Generates deploy/kubernetes/*.yaml from nginx/, envoy/ and deploy/config.example.yaml, so the
 * manifests carry exactly the tested configurations: the nginx snippets and envoy.yaml verbatim,
 * nginx.conf with its writable paths moved under /tmp, and sessiongate's configuration as the
 * example plus the pod's own listen and store settings (Redis behind Sentinel: replicas share
 * sessions). The documents are built as yaml nodes here, not pasted from text.
 * test/unit/deploy.test.ts checks the output is committed.
 *
 *   npm run gen:kubernetes
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Document, isMap, isScalar, type Node, parseDocument, Scalar, type YAMLMap } from 'yaml';
import { ROOT } from '../harness/processes.js';

// Kubernetes reads YAML 1.1 (so `0400` is octal there); lineWidth 0: long lines stay whole.
const STRINGIFY = { lineWidth: 0 } as const;
const factory = new Document(null, { version: '1.1' });
const node = (value: unknown): Node => factory.createNode(value, { aliasDuplicateObjects: false }) as Node;

/** A `{ a: b }` or `[a, b]` collection, for the short ones. */
function flow(value: object): Node {
  const n = node(value) as YAMLMap;
  n.flow = true;
  return n;
}
function scalar<T>(value: T, props: Partial<Scalar<T>>): Scalar<T> {
  return Object.assign(new Scalar(value), props);
}
const quoted = (value: string) => scalar(value, { type: Scalar.QUOTE_DOUBLE });
const literal = (text: string) => scalar(text, { type: Scalar.BLOCK_LITERAL });
const octal = (value: number) => scalar(value, { format: 'OCT' });

/** A map whose keys carry comments above them: `comments[key]` (lines without `#`). */
function map(entries: Record<string, unknown>, comments: Record<string, string> = {}): YAMLMap {
  const m = node(entries) as YAMLMap;
  for (const pair of m.items) {
    const key = pair.key as Scalar<string>;
    const text = comments[key.value];
    if (text !== undefined) key.commentBefore = hashless(text);
  }
  return m;
}
/** A node with a comment above it. */
function commented<T extends Node>(n: T, text: string): T {
  n.commentBefore = hashless(text);
  return n;
}
/** yaml prints each comment line as `#` + line, so a space goes in front. */
const hashless = (text: string) =>
  text
    .split('\n')
    .map((l) => (l ? ` ${l}` : l))
    .join('\n');

function stringify(docs: YAMLMap[]): string {
  return docs
    .map((contents) => {
      const doc = new Document(null, { version: '1.1' });
      doc.contents = contents;
      return doc.toString(STRINGIFY);
    })
    .join('---\n');
}

// ---------------------------------------------------------------------------------------------
// What the manifests embed, derived from the repository's tested files.

const read = (root: string, path: string) => readFileSync(join(root, path), 'utf8');

/** The first argument of a top-level-style nginx directive (`name arg ...;`), replaced. */
function moveDirective(conf: string, name: string, path: string, extraLines: string[] = []): string {
  const re = new RegExp(`^([ \\t]*)${name}[ \\t]+[^\\s;]+([ \\t][^;\\n]*)?;[ \\t]*$`, 'gm');
  const hits = conf.match(re) ?? [];
  if (hits.length !== 1) throw new Error(`nginx/nginx.conf: expected one \`${name}\` directive, found ${hits.length}`);
  return conf.replace(re, (_l, indent: string, rest: string | undefined) =>
    [`${indent}${name} ${path}${rest ?? ''};`, ...extraLines.map((l) => indent + l)].join('\n'),
  );
}

/** nginx/nginx.conf for an unprivileged container with a read-only root: pid, logs and temp files elsewhere. */
export function unprivilegedNginxConf(conf: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path /tmp/${k};`);
  conf = moveDirective(conf, 'pid', '/tmp/nginx.pid');
  conf = moveDirective(conf, 'error_log', '/dev/stderr');
  return moveDirective(conf, 'access_log', '/dev/stdout', temp);
}

/** The user and group the sessiongate container runs as: `node` (1000:1000) of deploy/Dockerfile's image. */
export const SESSIONGATE_UID = 1000;
/** The label that admits a pod (the login service) to sessiongate's session API: see the NetworkPolicy. */
export const LOGIN_SERVICE_LABEL = { 'sessiongate-login': 'true' } as const;
const LOGIN_LABEL_TEXT = 'sessiongate-login: "true"';

/**
 * deploy/config.example.yaml for the pod: every replica shares its sessions through Redis behind
 * Sentinel (with the memory store each pod would keep its own, and a user would be logged out
 * whenever the Service picked another pod); the HTTP port listens on the pod IP for the login
 * service's POST /~session (the NetworkPolicy admits only the login service there); probes and
 * scraping reach the admin port; the API token API stays on loopback.
 */
function podConfig(example: string): string {
  const doc = parseDocument(example, { version: '1.1' });
  const listen = doc.get('listen', true);
  if (!isMap(listen)) throw new Error('deploy/config.example.yaml: `listen` is not a map');
  listen.set('host', '0.0.0.0');
  const at = listen.items.findIndex((p) => isScalar(p.key) && p.key.value === 'host') + 1;
  listen.items.splice(at, 0, doc.createPair('admin_host', '0.0.0.0'));
  keyOf(doc, 'listen').commentBefore = hashless(
    [
      'nginx (or Envoy) calls 9180/9181 on 127.0.0.1, in the pod. host 0.0.0.0: the login service',
      'reaches POST /~session on 9180 through the *-sessiongate-session-api Service; the NetworkPolicy',
      `admits only pods labelled ${LOGIN_LABEL_TEXT} to 9180, and nobody from outside the pod to 9181.`,
      'The admin port serves health probes and metrics, scraped from outside. The API token API',
      '(listen.api_host/api_port, 127.0.0.1:9183 by default) stays on loopback: in no Service, never a',
      'containerPort; reach it with kubectl exec (sessiongate token ...) or kubectl port-forward.',
    ].join('\n'),
  );
  doc.set(
    'store',
    'redis+sentinel://redis-sentinel-0.redis-sentinel:26379,redis-sentinel-1.redis-sentinel:26379,redis-sentinel-2.redis-sentinel:26379/mymaster',
  );
  keyOf(doc, 'store').commentBefore = hashless(
    'Shared by every replica: Redis behind Sentinel (docs/redis.md); point it at yours. Never `memory`\nwith more than one replica: each pod would keep its own sessions.',
  );
  const items = (doc.contents as YAMLMap).items;
  const after = items.findIndex((p) => isScalar(p.key) && p.key.value === 'store') + 1;
  const redis = map(
    {
      key_prefix: quoted('sg:app:'),
      command_timeout: '100ms',
      password_file: '/etc/sessiongate/secrets/redis-password',
      sentinel: flow({ password_file: '/etc/sessiongate/secrets/redis-sentinel-password' }),
    },
    { password_file: 'From the Secret; without a Redis password, remove both password_file settings.' },
  );
  items.splice(after, 0, doc.createPair('redis', redis), doc.createPair('cache', flow({ enabled: true, ttl: '2s', negative_ttl: '500ms' })));
  return doc.toString(STRINGIFY);
}

function keyOf(doc: Document, key: string): Scalar {
  const pair = (doc.contents as YAMLMap).items.find((p) => isScalar(p.key) && p.key.value === key);
  if (!pair) throw new Error(`deploy/config.example.yaml: no \`${key}\``);
  return pair.key as Scalar;
}

// ---------------------------------------------------------------------------------------------
// The pods: sessiongate and the application are the same beside nginx and beside Envoy.

const NEEDS_HEADER = (service: string) => `Before kubectl apply:
- Redis behind Sentinel at the addresses in sessiongate.yaml's \`store\` (edit them to yours): the
  replicas share sessions through it.
- The Secret (never commit it):
    kubectl create secret generic sessiongate-secrets \\
      --from-literal=secret="$(head -c 48 /dev/urandom | base64)" \\
      --from-literal=login-token="$(head -c 32 /dev/urandom | base64)" \\
      --from-literal=redis-password=… --from-literal=redis-sentinel-password=…
- The login service: its pods labelled ${LOGIN_LABEL_TEXT}, calling
  POST http://${service}:9180/~session with the same login token (Authorization: Bearer).
  A login service in another namespace: add a namespaceSelector to the NetworkPolicy's rule.
Rotate the cookie secret by putting the new one first ("new\\nold"), waiting for the mounted
file to update, and sending SIGHUP (or rolling the pods); drop the old one a session lifetime later.`;

const sessiongateContainer = () =>
  map({
    name: 'sessiongate',
    image: 'sessiongate:0.1.0',
    args: flow([quoted('--config'), quoted('/etc/sessiongate/config/sessiongate.yaml')]),
    env: [
      { name: 'SESSIONGATE_SECRET_FILE', value: '/etc/sessiongate/secrets/secret' },
      { name: 'SESSIONGATE_LOGIN_TOKEN_FILE', value: '/etc/sessiongate/secrets/login-token' },
      { name: 'SESSIONGATE_LOG_LEVEL', value: 'info' },
    ],
    // The API token API's port (9183) is never a containerPort: it listens on loopback only.
    ports: [flow({ name: 'sg-http', containerPort: 9180 }), flow({ name: 'sg-grpc', containerPort: 9181 }), flow({ name: 'admin', containerPort: 9182 })],
    livenessProbe: { httpGet: flow({ path: '/healthz', port: 'admin' }), periodSeconds: 10, failureThreshold: 3 },
    readinessProbe: { httpGet: flow({ path: '/readyz', port: 'admin' }), periodSeconds: 5, failureThreshold: 2 },
    resources: { requests: flow({ cpu: '100m', memory: '96Mi' }), limits: flow({ cpu: quoted('1'), memory: '256Mi' }) },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SESSIONGATE_UID,
      runAsGroup: SESSIONGATE_UID,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: flow({ drop: flow(['ALL']) }),
    },
    volumeMounts: [
      flow({ name: 'sessiongate-config', mountPath: '/etc/sessiongate/config', readOnly: true }),
      flow({ name: 'sessiongate-secrets', mountPath: '/etc/sessiongate/secrets', readOnly: true }),
    ],
  });

function appContainer() {
  const image = scalar('registry.example.com/my-app:1.0', { comment: ' your application, listening on 127.0.0.1:8080' });
  return map({ name: 'app', image, ports: [flow({ name: 'app', containerPort: 8080 })] });
}

const sessiongateVolumes = (config: string) => [
  { name: 'sessiongate-config', configMap: flow({ name: config }) },
  map(
    { name: 'sessiongate-secrets', secret: flow({ secretName: 'sessiongate-secrets', defaultMode: octal(0o440) }) },
    {
      secret:
        'kubelet writes these files owned by root: group fsGroup (the pod securityContext) and 0440 let\nsessiongate (runAsUser/runAsGroup 1000, fsGroup as a supplementary group) read them, and no one else.',
    },
  ),
];

const scraped = () => ({ 'prometheus.io/scrape': quoted('true'), 'prometheus.io/port': quoted('9182'), 'prometheus.io/path': '/metrics' });

function configMap(name: string, data: Record<string, unknown>, comments: Record<string, string> = {}, header?: string): YAMLMap {
  return map({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: map(data, comments) }, header ? { apiVersion: header } : {});
}

function deployment(opts: { name: string; app: string; component: string; proxy: YAMLMap; volumes: unknown[] }): YAMLMap {
  const labels = { 'app.kubernetes.io/name': opts.app };
  const podSecurity = map(
    { runAsNonRoot: true, fsGroup: SESSIONGATE_UID, seccompProfile: flow({ type: 'RuntimeDefault' }) },
    { fsGroup: "The secret files' group, and a supplementary group of every container: sessiongate reads them." },
  );
  return map({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: opts.name, labels: flow({ ...labels, 'app.kubernetes.io/component': opts.component }) },
    spec: map(
      {
        replicas: 2,
        selector: { matchLabels: flow(labels) },
        template: {
          metadata: { labels: flow(labels), annotations: scraped() },
          spec: {
            securityContext: podSecurity,
            containers: [opts.proxy, sessiongateContainer(), appContainer()],
            volumes: opts.volumes,
          },
        },
      },
      { replicas: "More than one: sessiongate's store is Redis (its ConfigMap's `store`), shared by every replica." },
    ),
  });
}

const readOnlyRoot = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: flow({ drop: flow(['ALL']) }) };

function service(name: string, app: string, port: Record<string, unknown>, opts: { component?: string; header?: string } = {}): YAMLMap {
  const labels = opts.component ? { 'app.kubernetes.io/name': app, 'app.kubernetes.io/component': opts.component } : undefined;
  return map(
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: labels ? { name, labels: flow(labels) } : { name },
      spec: { selector: flow({ 'app.kubernetes.io/name': app }), ports: [flow(port)] },
    },
    opts.header ? { apiVersion: opts.header } : {},
  );
}

/**
 * The Services of one sidecar layout: the site; sessiongate's metrics (the admin port: health and
 * metrics, never the API token API); the session API for the login service; and the NetworkPolicy
 * that admits only the login service to it.
 */
function servicesAndPolicy(prefix: string, app: string): YAMLMap[] {
  const policyHeader = `Once a NetworkPolicy selects a pod, only what one admits reaches it: the site (http), metrics
(admin; kubelet's probes come from the node, which is always admitted), and sessiongate's HTTP port
from the login service only. Nothing reaches the gRPC port from outside the pod. Add a rule for any
other port of yours. It needs a network plugin that enforces NetworkPolicy (Calico, Cilium, ...);
without one, every pod in the cluster reaches 9180 and 9181: POST /~session still needs the login
token, and /auth and Check only judge the cookie the caller already holds.`;
  return [
    service(prefix, app, { name: 'http', port: 80, targetPort: 'http' }),
    service(
      `${prefix}-sessiongate-metrics`,
      app,
      { name: 'admin', port: 9182, targetPort: 'admin' },
      {
        component: 'sessiongate-metrics',
        header:
          "sessiongate's admin port: /metrics for Prometheus (and /healthz, /readyz). The API token API\n(/tokens) is not here: it listens on 127.0.0.1:9183 in the pod only (kubectl exec).",
      },
    ),
    service(
      `${prefix}-sessiongate-session-api`,
      app,
      { name: 'sg-http', port: 9180, targetPort: 'sg-http' },
      {
        component: 'sessiongate-session-api',
        header: `For the login service only: POST /~session (with the login token) on sessiongate's HTTP port.
The NetworkPolicy below admits only pods labelled ${LOGIN_LABEL_TEXT} to it; browsers reach
GET/DELETE /~session through the proxy, which refuses POST.`,
      },
    ),
    map(
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: `${prefix}-sessiongate` },
        spec: {
          podSelector: { matchLabels: flow({ 'app.kubernetes.io/name': app }) },
          policyTypes: flow(['Ingress']),
          ingress: [
            commented(map({ ports: [flow({ port: 'http' })] }), 'The site, from anywhere (the ingress controller, other services).'),
            commented(map({ ports: [flow({ port: 'admin' })] }), 'sessiongate metrics, for Prometheus.'),
            commented(
              map({ from: [{ podSelector: { matchLabels: flow({ ...LOGIN_SERVICE_LABEL }) } }], ports: [flow({ port: 'sg-http' })] }),
              'POST /~session: the login service only.',
            ),
          ],
        },
      },
      { apiVersion: policyHeader },
    ),
  ];
}

function nginxSidecar(root: string): string {
  const snippet = (f: string) => ({ name: 'nginx-config', mountPath: `/etc/nginx/${f}`, subPath: f.replace('sessiongate/', ''), readOnly: true });
  const nginx = map({
    name: 'nginx',
    image: 'nginxinc/nginx-unprivileged:1.27',
    ports: [flow({ name: 'http', containerPort: 8000 })],
    readinessProbe: { tcpSocket: flow({ port: 'http' }) },
    resources: { requests: flow({ cpu: '100m', memory: '64Mi' }), limits: flow({ cpu: quoted('1'), memory: '128Mi' }) },
    securityContext: readOnlyRoot,
    volumeMounts: [
      ...['nginx.conf', 'sessiongate/endpoints.conf', 'sessiongate/protect.conf'].map((f) => flow(snippet(f))),
      flow({ name: 'tmp', mountPath: '/tmp' }),
    ],
  });
  return stringify([
    configMap(
      'sessiongate-nginx',
      {
        'nginx.conf': literal(unprivilegedNginxConf(read(root, 'nginx/nginx.conf'))),
        'endpoints.conf': literal(read(root, 'nginx/sessiongate/endpoints.conf')),
        'protect.conf': literal(read(root, 'nginx/sessiongate/protect.conf')),
      },
      {
        'nginx.conf':
          "nginx/nginx.conf of the repository, with pid, logs and temp paths moved to where an\nunprivileged, read-only container can write. The snippets are the repository's, unchanged.",
      },
      `sessiongate as a sidecar beside nginx (auth_request) and the application, in one pod.\n${NEEDS_HEADER('app-sessiongate-session-api')}`,
    ),
    configMap('sessiongate-config', { 'sessiongate.yaml': literal(podConfig(read(root, 'deploy/config.example.yaml'))) }),
    deployment({
      name: 'app-with-sessiongate-nginx',
      app: 'app',
      component: 'nginx-sessiongate',
      proxy: nginx,
      volumes: [
        { name: 'nginx-config', configMap: flow({ name: 'sessiongate-nginx' }) },
        ...sessiongateVolumes('sessiongate-config'),
        { name: 'tmp', emptyDir: flow({}) },
      ],
    }),
    ...servicesAndPolicy('app', 'app'),
  ]);
}

function envoySidecar(root: string): string {
  const envoy = map(
    {
      name: 'envoy',
      image: 'envoyproxy/envoy:v1.36-latest',
      args: flow([quoted('-c'), quoted('/etc/envoy/envoy.yaml'), quoted('--log-level'), quoted('warn')]),
      ports: [flow({ name: 'http', containerPort: 8000 })],
      readinessProbe: { tcpSocket: flow({ port: 'http' }) },
      resources: { requests: flow({ cpu: '100m', memory: '64Mi' }), limits: flow({ cpu: quoted('1'), memory: '256Mi' }) },
      securityContext: { runAsNonRoot: true, runAsUser: 101, ...readOnlyRoot },
      volumeMounts: [flow({ name: 'envoy-config', mountPath: '/etc/envoy', readOnly: true })],
    },
    {
      image:
        'Envoy 1.31 or later (docs/envoy.md, "Versions"): before 1.31 a rotated session\'s Set-Cookie replaces\nevery cookie the application sets, and envoy.yaml\'s validate_mutations is unknown.',
    },
  );
  return stringify([
    configMap(
      'sessiongate-envoy',
      { 'envoy.yaml': literal(read(root, 'envoy/envoy.yaml')) },
      { 'envoy.yaml': 'envoy/envoy.yaml of the repository, unchanged.' },
      `sessiongate as a sidecar beside Envoy (ext_authz over gRPC) and the application, in one pod.\n${NEEDS_HEADER('app-envoy-sessiongate-session-api')}`,
    ),
    configMap('sessiongate-envoy-config', { 'sessiongate.yaml': literal(podConfig(read(root, 'deploy/config.example.yaml'))) }),
    deployment({
      name: 'app-with-sessiongate-envoy',
      app: 'app-envoy',
      component: 'envoy-sessiongate',
      proxy: envoy,
      volumes: [{ name: 'envoy-config', configMap: flow({ name: 'sessiongate-envoy' }) }, ...sessiongateVolumes('sessiongate-envoy-config')],
    }),
    ...servicesAndPolicy('app-envoy', 'app-envoy'),
  ]);
}

function serviceMonitor(): string {
  const header = `For the Prometheus Operator: scrape sessiongate's admin port (metrics; never the API token API,
which stays on loopback) through the metrics Services of nginx-sidecar.yaml and envoy-sidecar.yaml.
Without the operator, the pods' prometheus.io/* annotations do the same.`;
  return stringify([
    map(
      {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: { name: 'sessiongate', labels: flow({ release: 'prometheus' }) },
        spec: {
          selector: { matchLabels: flow({ 'app.kubernetes.io/component': 'sessiongate-metrics' }) },
          endpoints: [{ port: 'admin', path: '/metrics', interval: '15s' }],
        },
      },
      { apiVersion: header },
    ),
  ]);
}

/** Every manifest's path under the repository and its text. */
export function kubernetesManifests(root: string = ROOT): Record<string, string> {
  return {
    'deploy/kubernetes/nginx-sidecar.yaml': nginxSidecar(root),
    'deploy/kubernetes/envoy-sidecar.yaml': envoySidecar(root),
    'deploy/kubernetes/servicemonitor.yaml': serviceMonitor(),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [path, text] of Object.entries(kubernetesManifests())) {
    writeFileSync(join(ROOT, path), text);
    console.log(`wrote ${path}`);
  }
}
