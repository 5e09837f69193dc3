#!/usr/bin/env bash
# Runs one switchboard-loadtest scenario against a fresh node, the way the
# figures in docs/benchmarks.md were measured:
#
#   loadtest/tools/node.sh [--nodelay] [--one-worker] [--agents N] [--max-chats N] \
#       [--rona-ms N] [--overload-target-ms N (0: no shedding)] \
#       -- <scenario> [harness flags...]
#
# It generates a load config (gen-config), starts target/release/switchboard
# on a free loopback port, waits until no compiler runs (the machine is
# shared) and a previous run's TIME_WAIT sockets are gone, runs the harness
# with --url and --server-pid filled in, then stops the node. Variants, for
# experiments only (the node's code is unchanged):
#   --nodelay     TCP_NODELAY on every accepted socket (LD_PRELOAD shim
#                 built from loadtest/tools/nodelay.c)
#   --one-worker  the node starts with one visible core (1 HTTP worker, 1
#                 engine arbiter), then its threads may use both cores
# BIN=<dir>: binaries from there, not target/release (A/B of two builds).
# DB=sqlite (default): the node's record and live state in a SQLite file in
# the run's folder, as shipped; DB=memory: `memory:` (the in-memory store);
# DB=<url>: that database_url.
set -euo pipefail
cd "$(dirname "$0")/../.."
. loadtest/tools/common.sh
nodelay=0 one_worker=0 agents=200 max_chats=10 rona_ms=3000 overload=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nodelay) nodelay=1 ;;
    --one-worker) one_worker=1 ;;
    --agents) agents=$2; shift ;;
    --max-chats) max_chats=$2; shift ;;
    --rona-ms) rona_ms=$2; shift ;;
    --overload-target-ms) overload=(--overload-target-ms "$2"); shift ;;
    --) shift; break ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
bin=${BIN:-target/release}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$(free_port)
case "${DB:-sqlite}" in
  sqlite) database_url="sqlite://$work/switchboard.db" ;;
  memory) database_url="memory:" ;;
  *) database_url=$DB ;;
esac
"$bin/switchboard-loadtest" gen-config --listen "127.0.0.1:$port" --agents "$agents" \
  --max-chats "$max_chats" --rona-timeout-ms "$rona_ms" --database-url "$database_url" "${overload[@]}" \
  --out "$work/node.toml"
preload=""
if [ "$nodelay" = 1 ]; then
  gcc -shared -fPIC -O2 -o "$work/nodelay.so" loadtest/tools/nodelay.c -ldl
  preload="$work/nodelay.so"
fi
wait_for_quiet_machine
wait_for_time_wait_to_clear
if [ "$one_worker" = 1 ]; then
  LD_PRELOAD="$preload" taskset -c 0 "$bin/switchboard" --config "$work/node.toml" >"$work/node.log" 2>&1 &
  pid=$!
  sleep 0.5
  taskset -a -p -c 0-"$(($(nproc) - 1))" "$pid" >/dev/null
else
  LD_PRELOAD="$preload" "$bin/switchboard" --config "$work/node.toml" >"$work/node.log" 2>&1 &
  pid=$!
fi
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
status=0
"$bin/switchboard-loadtest" "$@" --url "http://127.0.0.1:$port" --server-pid "$pid" || status=$?
kill "$pid"
wait "$pid" 2>/dev/null || true
exit "$status"
