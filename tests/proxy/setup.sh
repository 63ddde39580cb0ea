#!/usr/bin/env bash
# Installs tinyproxy (Debian), the real HTTP proxy the proxy tests run.
# Idempotent: does nothing when `tinyproxy` is already on the PATH.
set -euo pipefail
if command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || [ -x /usr/sbin/tinyproxy ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends tinyproxy >/dev/null \
  || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends tinyproxy >/dev/null; }
# The package starts a system-wide daemon on port 8888: the tests run their
# own, so stop it (and keep it from holding the port).
if command -v service >/dev/null 2>&1; then $SUDO service tinyproxy stop >/dev/null 2>&1 || true; fi
pkill_pidfile=/run/tinyproxy/tinyproxy.pid
if [ -f "$pkill_pidfile" ]; then $SUDO kill "$(cat "$pkill_pidfile")" 2>/dev/null || true; fi
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ]
