#!/usr/bin/env bash
# Runs the browser end-to-end suites: installs Debian's Chromium if missing,
# the pinned playwright-core (no browser download), builds the server binary
# unless SWITCHBOARD_BIN points at one, then `node --test`.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi

if [ -z "${SWITCHBOARD_BIN:-}" ]; then
  (cd .. && cargo build -p switchboard-gateway --bin switchboard)
fi

PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
node --test --test-concurrency=1 tests/
