#!/usr/bin/env bash
# Runs one switchboard-loadtest scenario against a fresh local cluster: a
# Redis of its own on a free port (never 6379), N nodes on free loopback
# ports sharing it, and, for `failover`, the last node's PID as --kill-pid
# and a command that starts it again as --restart-cmd:
#
#   loadtest/tools/cluster.sh [--nodes 3] [--agents N] [--max-chats N] \
#       [--heartbeat-ms 3000] [--no-restart] -- <scenario> [harness flags...]
#
# Every node gets the same generated config (gen-config: same agents, same
# token secret), its own listen port, node_id "auto", and the cluster keys
# from the environment (SWITCHBOARD__CLUSTER__*). Like node.sh it waits
# for 10 quiet seconds (no compiler) and for TIME_WAIT sockets to clear
# first. It stops what it started (by PID) at the end; the logs stay in the
# printed directory when the harness fails (KEEP=1: always). BIN=<dir>: binaries from there, not target/release.
# The nodes' record goes to a PostgreSQL database made for the run and
# dropped after it (PG=<server url>, default postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/../.."
. loadtest/tools/common.sh
nodes=3 agents=200 max_chats=10 heartbeat_ms=3000 restart=1
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift ;;
    --agents) agents=$2; shift ;;
    --max-chats) max_chats=$2; shift ;;
    --heartbeat-ms) heartbeat_ms=$2; shift ;;
    --no-restart) restart=0 ;;
    --) shift; break ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
scenario=${1:?scenario}
bin=${BIN:-$PWD/target/release}
work=$(mktemp -d /tmp/sb-cluster.XXXXXX)
pids=()
redis_pid=""
cleanup() {
  # Nodes first (they give up their heartbeats in Redis), then Redis.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/restarted.pid" ] && kill "$(cat "$work/restarted.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    [ -f "$work/restarted.pid" ] && kill -0 "$(cat "$work/restarted.pid")" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  redis_pid=""
  pids=()
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
}
pg=${PG:-postgres://postgres@127.0.0.1:5432}
database="sb_load_$$"
trap cleanup EXIT
psql "$pg/postgres" -qc "CREATE DATABASE $database" >/dev/null
export SWITCHBOARD__STORAGE__DATABASE_URL="$pg/$database"
wait_for_quiet_machine
wait_for_time_wait_to_clear
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
export SWITCHBOARD__CLUSTER__REDIS_URL="redis://127.0.0.1:$redis_port"
export SWITCHBOARD__CLUSTER__HEARTBEAT_TTL_MS="$heartbeat_ms"
urls=() node_pids=()
for i in $(seq 1 "$nodes"); do
  port=$(free_port)
  "$bin/switchboard-loadtest" gen-config --listen "127.0.0.1:$port" --agents "$agents" \
    --max-chats "$max_chats" --out "$work/node$i.toml"
  "$bin/switchboard" --config "$work/node$i.toml" >"$work/node$i.log" 2>&1 &
  pids+=($!)
  node_pids+=($!)
  urls+=("http://127.0.0.1:$port")
done
for url in "${urls[@]}"; do
  for _ in $(seq 1 100); do
    curl -sf "$url/readyz" >/dev/null && break
    sleep 0.1
  done
  curl -sf "$url/readyz" >/dev/null || { echo "$url not ready; logs in $work" >&2; trap - EXIT; cleanup; exit 1; }
done
url_list=$(IFS=,; echo "${urls[*]}")
extra=()
if [ "$scenario" = failover ]; then
  last=$nodes
  extra+=(--kill-pid "${node_pids[$((last - 1))]}")
  if [ "$restart" = 1 ]; then
    cat >"$work/restart.sh" <<EOF
#!/bin/sh
# Starts node $last again (same config, same port; a new "auto" node id).
"$bin/switchboard" --config "$work/node$last.toml" >>"$work/node$last.restarted.log" 2>&1 &
echo \$! >"$work/restarted.pid"
EOF
    chmod +x "$work/restart.sh"
    extra+=(--restart-cmd "$work/restart.sh")
  fi
fi
echo "cluster: redis 127.0.0.1:$redis_port, nodes $url_list (pids ${node_pids[*]}); logs in $work" >&2
status=0
"$bin/switchboard-loadtest" "$@" --url "$url_list" "${extra[@]}" || status=$?
cleanup
trap - EXIT
if [ "$status" = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi
exit "$status"
