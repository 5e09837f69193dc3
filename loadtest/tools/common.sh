# Shared by node.sh and cluster.sh (sourced, not run).

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (at most 20 minutes) for 10 quiet seconds: no compiler running. The
# machine is shared; a build beside a run moves its tail latencies.
wait_for_quiet_machine() {
  local quiet=0
  for _ in $(seq 1 1200); do
    if pgrep -x rustc >/dev/null || pgrep -x cc1 >/dev/null; then quiet=0; else quiet=$((quiet + 1)); fi
    [ "$quiet" -ge 10 ] && return 0
    sleep 1
  done
}

# Waits (at most 90 s) until fewer than 1,000 TCP sockets are in TIME_WAIT,
# so a run does not start while a previous 18,000-socket run's ports are
# still held on the harness's 127.0.0.x source addresses (it binds each
# client socket to one before connecting).
wait_for_time_wait_to_clear() {
  for _ in $(seq 1 90); do
    [ "$(ss -Htan state time-wait | wc -l)" -lt 1000 ] && return 0
    sleep 1
  done
}
