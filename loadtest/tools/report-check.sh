#!/usr/bin/env bash
# The reports against the harness's own counts (issue: "run the harness for
# ten minutes; afterwards the reports' totals equal the harness's counts"):
# a fresh node on a SQLite file, a `steady` run with RONAs and abandons,
# then today's and yesterday's daily rows of both reports, summed, compared
# with what the harness counted. Exits 1 on any difference.
#
#   loadtest/tools/report-check.sh [--duration 600s] [--rate 4] [--agents 10]
#
# Ten agents with two slots each take about 3 chats a second: at 4, the queue
# grows until customers give up (patience 20 s), so some abandon;
# --rona-share makes agents let offers ring. Transfers and conferences stay
# off, so a chat enters the queue once and is answered (handled) at most
# once: the harness's counts are the reports' columns.
set -euo pipefail
cd "$(dirname "$0")/../.."
. loadtest/tools/common.sh
duration=600s rate=4 agents=10
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift ;;
    --rate) rate=$2; shift ;;
    --agents) agents=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
bin=${BIN:-target/release}
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(free_port)
"$bin/switchboard-loadtest" gen-config --listen "127.0.0.1:$port" --agents "$agents" \
  --max-chats 2 --rona-timeout-ms 2000 --database-url "sqlite://$work/switchboard.db" \
  --out "$work/node.toml"
"$bin/switchboard" --config "$work/node.toml" >"$work/node.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done
"$bin/switchboard-loadtest" steady --url "http://127.0.0.1:$port" --agents "$agents" \
  --agent-max-chats 2 --rate "$rate" --duration "$duration" --messages 3 \
  --message-interval 2s --think 500ms --rona-share 0.05 --patience 20s \
  --server-pid "$pid" --quiet --json >"$work/run.json"

python3 - "$port" "$work/run.json" <<'PY'
import json, sys, time, datetime, urllib.request

port, run_file = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
run = json.load(open(run_file))
counts = run["result"]["counters"]

def call(path, token=None, body=None):
    request = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)

token = call("/api/v1/agent/login", body={"username": "lt1", "password": "lt1-pw"})["token"]
today = datetime.datetime.now(datetime.timezone.utc).date()
span = f"from={today - datetime.timedelta(days=1)}&to={today + datetime.timedelta(days=1)}&interval=1d"
finished = datetime.datetime.now(datetime.timezone.utc).isoformat()
# Every event up to now counted (reports trail by well under a second).
for _ in range(100):
    queues = call(f"/api/v1/reports/queues?{span}", token)
    if queues["as_of"] >= finished[:19]:
        break
    time.sleep(0.1)
agents = call(f"/api/v1/reports/agents?{span}", token)

def total(rows, column):
    return sum(row[column] for row in rows)

pairs = [
    ("chats started", counts["chats_created"], "queues: entered", total(queues["rows"], "entered")),
    ("chats handled", counts["accepts"], "queues: handled", total(queues["rows"], "handled")),
    ("chats handled", counts["accepts"], "agents: accepted", total(agents["rows"], "accepted")),
    ("chats abandoned", counts["chats_abandoned"], "queues: abandoned", total(queues["rows"], "abandoned")),
    ("RONA", counts["ronas"], "queues: rona", total(queues["rows"], "rona")),
    ("RONA", counts["ronas"], "agents: rona", total(agents["rows"], "rona")),
    ("wrap-ups", counts["wrap_ups"], "queues: wrap_ups", sum(sum(row["wrap_ups"].values()) for row in queues["rows"])),
]
wrong = 0
print(f"{'harness':<16} {'count':>8}   {'reports':<20} {'total':>8}")
for name, harness, column, reports in pairs:
    mark = "" if harness == reports else "   <-- differs"
    wrong += harness != reports
    print(f"{name:<16} {harness:>8}   {column:<20} {reports:>8}{mark}")
print(f"(also: offers {counts['offers']}, completed {counts['chats_completed']}, "
      f"create failures {counts['chats_create_failed']}, customer timeouts {counts['customer_timeouts']})")
sys.exit(1 if wrong else 0)
PY
