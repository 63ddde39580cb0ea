#!/usr/bin/env bash
# Installs what the browser tests need: Debian's `chromium` (apt, when missing)
# and the pinned Node packages (playwright-core, socket.io-client for its
# browser bundle, @socket.io/admin-ui for its built UI) into node_modules with
# `npm ci` from the committed package-lock.json. Idempotent: npm is rerun only
# when the lock file changed (a stamp holds its checksum). Quiet on success;
# on failure prints the installer's output and exits non-zero. Safe to run
# concurrently (flock). No browser is downloaded: playwright-core drives
# /usr/bin/chromium (or $CHROMIUM).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# die, need, checksum, $log; the lock taken.
source "$here/../setup-lib.sh"
setup_begin browser "$here"

# --- Chromium, from Debian ---
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    need apt-get "chromium is missing and apt-get is not here to install it (or set CHROMIUM to a Chromium binary)"
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        need sudo "chromium is missing; installing it needs root"
        sudo="sudo -n"
    fi
    {
        $sudo apt-get update -q
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium
    } >"$log" 2>&1 || die "apt-get install chromium failed"
    [ -x "$chromium" ] || die "chromium installed but $chromium is not there"
fi
"$chromium" --headless --no-sandbox --version >"$log" 2>&1 || die "$chromium does not run"

# --- Node: playwright-core, socket.io-client, @socket.io/admin-ui, @mdi/font (its icons) ---
need node "Node.js 18 or later is required"
need npm "npm is required"
sum="$(checksum package.json package-lock.json)"
stamp="node_modules/.browser-stamp"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    rm -rf node_modules
    npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1 || die "npm ci failed in $here"
    for file in node_modules/socket.io-client/dist/socket.io.min.js \
        node_modules/@socket.io/admin-ui/ui/dist/index.html \
        node_modules/@mdi/font/css/materialdesignicons.min.css; do
        [ -f "$file" ] || die "$file is missing after npm ci"
    done
    node -e 'require("playwright-core")' >"$log" 2>&1 || die "playwright-core does not load"
    echo "$sum" >"$stamp"
fi
