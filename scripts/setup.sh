#!/usr/bin/env bash
# Installs everything diag needs on Debian (system packages for the lab and tests, a virtualenv),
# then runs the demo on the lab. Usage (as root): bash scripts/setup.sh [--no-demo]
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
PKGS=(python3 python3-venv python3-dev gcc iproute2 nftables conntrack coturn dnsmasq-base miniupnpd
      lldpd iperf3 nmap prometheus-pushgateway chromium tcpdump dnsutils netcat-openbsd curl
      iputils-ping procps gettext tmux openssl ethtool nodejs
      libnss3-tools default-jre-headless
      prometheus prometheus-node-exporter)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq
  # miniupnpd's postinst asks questions and may try to start a daemon; the lab runs its own.
  apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
fi
# The distro daemons are not used: the lab starts its own instances inside namespaces.
for svc in coturn miniupnpd lldpd prometheus prometheus-node-exporter prometheus-pushgateway dnsmasq; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
done
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
# The official M-Lab ndt7 JavaScript client: the lab's ndt7 server is checked against it (node runs
# it inside a lab namespace only). Gitignored; pinned to the version the test was written for.
if [ ! -f tools/node/node_modules/@m-lab/ndt7/package.json ]; then
  # Debian ships npm apart from nodejs (NodeSource's nodejs has it inside).
  command -v npm >/dev/null 2>&1 || apt-get install -y -qq npm
  npm install --prefix tools/node --no-audit --no-fund --silent @m-lab/ndt7@0.1.4
fi
# The Nu HTML Checker (vnu.jar, run with the headless Java above, offline, in a throwaway network
# namespace) validates the reports in the tests. npm only fetches the jar; the package's
# postinstall script (which would download a Java runtime) is not run.
if [ ! -f tools/node/node_modules/vnu-jar/build/dist/vnu.jar ]; then
  command -v npm >/dev/null 2>&1 || apt-get install -y -qq npm
  npm install --prefix tools/node --no-audit --no-fund --silent --ignore-scripts vnu-jar@26.9.27
fi
if [ "${1:-}" != "--no-demo" ]; then
  .venv/bin/diag demo
fi
