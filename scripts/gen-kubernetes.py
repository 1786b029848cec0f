#!/usr/bin/env python3
# Regenerates deploy/kubernetes/*.yaml from nginx/, envoy/ and deploy/config.example.yaml, so the
# manifests carry exactly the tested configurations (test/unit/deploy.test.ts checks they do).
# Run from anywhere: python3 scripts/gen-kubernetes.py
import os
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..') + '/'

def block(text, indent):
    pad=' '*indent
    return '\n'.join((pad+l) if l else '' for l in text.rstrip('\n').split('\n'))
nginx_conf=open(root+'nginx/nginx.conf').read()
k8s_nginx=nginx_conf.replace('pid logs/nginx.pid;','pid /tmp/nginx.pid;').replace('error_log logs/error.log warn;','error_log /dev/stderr warn;').replace('    access_log logs/access.log;','    access_log /dev/stdout;\n    client_body_temp_path /tmp/client_body;\n    proxy_temp_path /tmp/proxy;\n    fastcgi_temp_path /tmp/fastcgi;\n    uwsgi_temp_path /tmp/uwsgi;\n    scgi_temp_path /tmp/scgi;')
assert k8s_nginx!=nginx_conf
endpoints=open(root+'nginx/sessiongate/endpoints.conf').read()
protect=open(root+'nginx/sessiongate/protect.conf').read()
example=open(root+'deploy/config.example.yaml').read()
sg_cfg=example.replace('listen: { host: 127.0.0.1, http_port: 9180, grpc_port: 9181, admin_port: 9182 }','# Decisions only from inside the pod; probes and scraping reach the admin port.\nlisten: { host: 127.0.0.1, admin_host: 0.0.0.0, http_port: 9180, grpc_port: 9181, admin_port: 9182 }')
assert sg_cfg!=example
envoy=open(root+'envoy/envoy.yaml').read()

SG_CONTAINER='''        - name: sessiongate
          image: sessiongate:0.1.0
          args: ["--config", "/etc/sessiongate/config/sessiongate.yaml"]
          env:
            - name: SESSIONGATE_SECRET_FILE
              value: /etc/sessiongate/secrets/secret
            - name: SESSIONGATE_LOGIN_TOKEN_FILE
              value: /etc/sessiongate/secrets/login-token
            - name: SESSIONGATE_LOG_LEVEL
              value: info
          ports:
            - { name: sg-http, containerPort: 9180 }
            - { name: sg-grpc, containerPort: 9181 }
            - { name: admin, containerPort: 9182 }
          livenessProbe:
            httpGet: { path: /healthz, port: admin }
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            httpGet: { path: /readyz, port: admin }
            periodSeconds: 5
            failureThreshold: 2
          resources:
            requests: { cpu: 100m, memory: 96Mi }
            limits: { cpu: "1", memory: 256Mi }
          securityContext:
            runAsNonRoot: true
            runAsUser: 1000
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL] }
          volumeMounts:
            - { name: sessiongate-config, mountPath: /etc/sessiongate/config, readOnly: true }
            - { name: sessiongate-secrets, mountPath: /etc/sessiongate/secrets, readOnly: true }'''

# The application container and sessiongate's volumes: the same in both pods.
APP_CONTAINER='''        - name: app
          image: registry.example.com/my-app:1.0   # your application, listening on 127.0.0.1:8080
          ports:
            - { name: app, containerPort: 8080 }
'''
SG_VOLUMES='''        - name: sessiongate-config
          configMap: { name: sessiongate-config }
        - name: sessiongate-secrets
          secret: { secretName: sessiongate-secrets, defaultMode: 0400 }
'''

HEADER = '''# Create the secrets first (never commit them):
#   kubectl create secret generic sessiongate-secrets \\
#     --from-literal=secret="$(head -c 48 /dev/urandom | base64)" \\
#     --from-literal=login-token="$(head -c 32 /dev/urandom | base64)"
# Rotate the cookie secret by putting the new one first ("new\\nold"), waiting for the mounted
# file to update, and sending SIGHUP (or rolling the pods); drop the old one a session lifetime later.
'''
ANN='''      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9182"
        prometheus.io/path: /metrics'''

nginx_yaml='''# sessiongate as a sidecar beside nginx (auth_request) and the application, in one pod.
@HEADER@
apiVersion: v1
kind: ConfigMap
metadata:
  name: sessiongate-nginx
data:
  # nginx/nginx.conf of the repository, with pid, logs and temp paths moved to where an
  # unprivileged, read-only container can write. The snippets are the repository's, unchanged.
  nginx.conf: |
@NGINX@
  endpoints.conf: |
@ENDPOINTS@
  protect.conf: |
@PROTECT@
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: sessiongate-config
data:
  sessiongate.yaml: |
@SGCFG@
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-with-sessiongate-nginx
  labels: { app.kubernetes.io/name: app, app.kubernetes.io/component: nginx-sessiongate }
spec:
  replicas: 2
  selector:
    matchLabels: { app.kubernetes.io/name: app }
  template:
    metadata:
      labels: { app.kubernetes.io/name: app }
@ANN@
    spec:
      securityContext: { runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }
      containers:
        - name: nginx
          image: nginxinc/nginx-unprivileged:1.27
          ports:
            - { name: http, containerPort: 8000 }
          readinessProbe:
            tcpSocket: { port: http }
          resources:
            requests: { cpu: 100m, memory: 64Mi }
            limits: { cpu: "1", memory: 128Mi }
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL] }
          volumeMounts:
            - { name: nginx-config, mountPath: /etc/nginx/nginx.conf, subPath: nginx.conf, readOnly: true }
            - { name: nginx-config, mountPath: /etc/nginx/sessiongate/endpoints.conf, subPath: endpoints.conf, readOnly: true }
            - { name: nginx-config, mountPath: /etc/nginx/sessiongate/protect.conf, subPath: protect.conf, readOnly: true }
            - { name: tmp, mountPath: /tmp }
@SG@
@APP@
      volumes:
        - name: nginx-config
          configMap: { name: sessiongate-nginx }
@SGVOL@
        - name: tmp
          emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  selector: { app.kubernetes.io/name: app }
  ports:
    - { name: http, port: 80, targetPort: http }
---
apiVersion: v1
kind: Service
metadata:
  name: app-sessiongate-metrics
  labels: { app.kubernetes.io/name: app, app.kubernetes.io/component: sessiongate-metrics }
spec:
  selector: { app.kubernetes.io/name: app }
  ports:
    - { name: admin, port: 9182, targetPort: admin }
'''
nginx_yaml=nginx_yaml.replace('@HEADER@',HEADER.rstrip('\n')).replace('@NGINX@',block(k8s_nginx,4)).replace('@ENDPOINTS@',block(endpoints,4)).replace('@PROTECT@',block(protect,4)).replace('@SGCFG@',block(sg_cfg,4)).replace('@ANN@',ANN).replace('@SG@',SG_CONTAINER).replace('@APP@\n',APP_CONTAINER).replace('@SGVOL@\n',SG_VOLUMES)
open(root+'deploy/kubernetes/nginx-sidecar.yaml','w').write(nginx_yaml)

envoy_yaml='''# sessiongate as a sidecar beside Envoy (ext_authz over gRPC) and the application, in one pod.
# It uses the `sessiongate-config` ConfigMap of nginx-sidecar.yaml (or redis-sentinel-config.yaml).
@HEADER@
apiVersion: v1
kind: ConfigMap
metadata:
  name: sessiongate-envoy
data:
  # envoy/envoy.yaml of the repository, unchanged.
  envoy.yaml: |
@ENVOY@
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-with-sessiongate-envoy
  labels: { app.kubernetes.io/name: app-envoy, app.kubernetes.io/component: envoy-sessiongate }
spec:
  replicas: 2
  selector:
    matchLabels: { app.kubernetes.io/name: app-envoy }
  template:
    metadata:
      labels: { app.kubernetes.io/name: app-envoy }
@ANN@
    spec:
      securityContext: { runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }
      containers:
        - name: envoy
          image: envoyproxy/envoy:v1.36-latest
          args: ["-c", "/etc/envoy/envoy.yaml", "--log-level", "warn"]
          ports:
            - { name: http, containerPort: 8000 }
          readinessProbe:
            tcpSocket: { port: http }
          resources:
            requests: { cpu: 100m, memory: 64Mi }
            limits: { cpu: "1", memory: 256Mi }
          securityContext:
            runAsNonRoot: true
            runAsUser: 101
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL] }
          volumeMounts:
            - { name: envoy-config, mountPath: /etc/envoy, readOnly: true }
@SG@
@APP@
      volumes:
        - name: envoy-config
          configMap: { name: sessiongate-envoy }
@SGVOL@
'''
envoy_yaml=envoy_yaml.replace('@HEADER@',HEADER.rstrip('\n')).replace('@ENVOY@',block(envoy,4)).replace('@ANN@',ANN).replace('@SG@',SG_CONTAINER).replace('@APP@\n',APP_CONTAINER).replace('@SGVOL@\n',SG_VOLUMES)
open(root+'deploy/kubernetes/envoy-sidecar.yaml','w').write(envoy_yaml)

sentinel_cfg = sg_cfg.replace('store: memory','''# Shared by every replica: Redis behind Sentinel (see README "Redis").
store: redis+sentinel://redis-sentinel-0.redis-sentinel:26379,redis-sentinel-1.redis-sentinel:26379,redis-sentinel-2.redis-sentinel:26379/mymaster
redis:
  key_prefix: "sg:app:"
  command_timeout: 100ms
  password_file: /etc/sessiongate/secrets/redis-password
  sentinel: { password_file: /etc/sessiongate/secrets/redis-sentinel-password }
cache: { enabled: true, ttl: 2s, negative_ttl: 500ms }''')
assert sentinel_cfg!=sg_cfg
sentinel_yaml='''# The store settings for several replicas sharing Redis through Sentinel: apply this ConfigMap
# instead of `sessiongate-config` from nginx-sidecar.yaml, and add the Redis passwords to the secret:
#   kubectl create secret generic sessiongate-secrets \\
#     --from-literal=secret=… --from-literal=login-token=… \\
#     --from-literal=redis-password=… --from-literal=redis-sentinel-password=…
apiVersion: v1
kind: ConfigMap
metadata:
  name: sessiongate-config
data:
  sessiongate.yaml: |
@CFG@
'''.replace('@CFG@',block(sentinel_cfg,4))
open(root+'deploy/kubernetes/redis-sentinel-config.yaml','w').write(sentinel_yaml)

open(root+'deploy/kubernetes/servicemonitor.yaml','w').write('''# For the Prometheus Operator: scrape sessiongate's admin port through the metrics Service of
# nginx-sidecar.yaml. Without the operator, the pods' prometheus.io/* annotations do the same.
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: sessiongate
  labels: { release: prometheus }
spec:
  selector:
    matchLabels: { app.kubernetes.io/component: sessiongate-metrics }
  endpoints:
    - port: admin
      path: /metrics
      interval: 15s
''')
