#!/usr/bin/env bash
# The whole test suite: installs the real servers the tests start (redis-server, nginx, caddy,
# haproxy, and the applications test/e2e/app-servers.test.ts puts behind nginx: Tomcat 10, python3), the browser
# the OpenID Connect login tests drive (Debian's chromium) and the benchmark's load generators
# (wrk, h2load) when they are missing, builds the service, and runs every test. Ends with
# `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null 2>&1 || [ -x /usr/bin/caddy ] || missing+=(caddy)
# HAProxy (2.6+, with Lua) runs the shipped haproxy/ config.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# Real application servers behind the shipped nginx config (the path and method tables).
[ -f /usr/share/tomcat10/bin/bootstrap.jar ] || missing+=(tomcat10)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# The real browser of the login tests (harness/browser.ts runs exactly this binary; none = failure).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The load generators of the benchmark, which the test run smoke-tests.
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
# systemd-analyze verifies the shipped unit (test/e2e/install.test.ts).
[ -x /usr/bin/systemd-analyze ] || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  echo "test: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the packaged services where it can; the tests start their own.
  service nginx stop >/dev/null 2>&1 || true
  service caddy stop >/dev/null 2>&1 || true
  service haproxy stop >/dev/null 2>&1 || true
  service redis-server stop >/dev/null 2>&1 || true
  service tomcat10 stop >/dev/null 2>&1 || true
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc -p tsconfig.build.json
npx tsc -p tsconfig.bench.json
npx tsc -p tsconfig.json --noEmit
# The linter and formatter (Biome): a finding stops the run here, before any test.
npx biome check .
exec npx vitest run "$@"
