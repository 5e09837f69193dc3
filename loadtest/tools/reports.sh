#!/usr/bin/env bash
# Reports (docs/benchmarks.md, Reports): fills a database with a month of
# conversations' and agents' events (seed-events), projects them into the
# report buckets (`switchboard rebuild-reports`, timed), starts a node on
# that database and times the reports against it (report-timing):
#
#   loadtest/tools/reports.sh [--conversations N] [--days N] [--queues N] \
#       [--agents N] [--seed N] [--requests N] [--keep]
#
# DB=sqlite (default): a SQLite file in the run's folder; DB=<url>: that
# database (for PostgreSQL an empty one, e.g. made with
# `createdb -h 127.0.0.1 -U postgres sb_bench_reports`). --keep: the run's
# folder (config, SQLite file, logs) is kept and named at the end.
# BIN=<dir>: binaries from there, not target/release.
set -euo pipefail
cd "$(dirname "$0")/../.."
. loadtest/tools/common.sh
conversations=1000000 days=31 queues=4 agents=200 seed=1 requests=50 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --conversations) conversations=$2; shift ;;
    --days) days=$2; shift ;;
    --queues) queues=$2; shift ;;
    --agents) agents=$2; shift ;;
    --seed) seed=$2; shift ;;
    --requests) requests=$2; shift ;;
    --keep) keep=1 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
bin=${BIN:-target/release}
work=$(mktemp -d)
if [ "$keep" = 1 ]; then
  trap 'echo "kept $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
port=$(free_port)
case "${DB:-sqlite}" in
  sqlite) database_url="sqlite://$work/switchboard.db" ;;
  *) database_url=$DB ;;
esac
"$bin/switchboard-loadtest" gen-config --listen "127.0.0.1:$port" --agents "$agents" \
  --queues "$queues" --database-url "$database_url" --out "$work/node.toml"
echo "== seed-events"
"$bin/switchboard-loadtest" seed-events --database-url "$database_url" \
  --conversations "$conversations" --days "$days" --queues "$queues" --agents "$agents" \
  --seed "$seed"
wait_for_quiet_machine
echo "== rebuild-reports"
/usr/bin/time -f "rebuild-reports: %e s wall, %U s user, %S s sys, max RSS %M KiB" \
  "$bin/switchboard" rebuild-reports --config "$work/node.toml"
wait_for_quiet_machine
echo "== report-timing"
"$bin/switchboard" --config "$work/node.toml" >"$work/node.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
status=0
"$bin/switchboard-loadtest" report-timing --url "http://127.0.0.1:$port" --days "$days" \
  --requests "$requests" || status=$?
kill "$pid"
wait "$pid" 2>/dev/null || true
exit "$status"
