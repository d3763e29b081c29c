#!/usr/bin/env bash
# `make down`: stop what `make up` started: the hub (which stops its services, the proxy and
# the running sandboxes, recording each session's close), any sandbox container left behind,
# the sandbox network and its firewall rules. All data stays in the data directory.
# Safe to run when nothing runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=$(realpath -m "${1:-var}")
RUN=$DATA_DIR/run
NETWORK=${SHUYU_SANDBOX_NETWORK:-shuyu-sandbox}
PREFIX=${SHUYU_SANDBOX_PREFIX:-shuyu}

stop_pid() {  # name pidfile: SIGTERM, wait up to 60 s, then SIGKILL
  local name=$1 pidfile=$2 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; echo "killed $name (pid $pid)"; else echo "stopped $name (pid $pid)"; fi
  fi
  rm -f "$pidfile"
}

stop_pid hub "$RUN/hub.pid"
for pidfile in "$RUN"/*.pid; do  # anything else an older make up started (a ledger service)
  [ -e "$pidfile" ] || continue
  stop_pid "$(basename "$pidfile" .pid)" "$pidfile"
done

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  left=$(docker ps -aq --filter "label=org.shuyu.sandbox=1" --filter "name=^/${PREFIX}-sandbox-")
  if [ -n "$left" ]; then
    # shellcheck disable=SC2086
    docker rm -f $left >/dev/null
    echo "removed $(echo "$left" | wc -w) sandbox container(s) the hub left behind"
  fi
  if docker network inspect "$NETWORK" >/dev/null 2>&1; then
    bridge=$(docker network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$NETWORK")
    { [ -n "$bridge" ] && [ "$bridge" != "<no value>" ]; } \
      || bridge="br-$(docker network inspect -f '{{.Id}}' "$NETWORK" | cut -c1-12)"
    bash deploy/firewall/shuyu-firewall.sh remove --bridge "$bridge"
    docker network rm "$NETWORK" >/dev/null && echo "removed network $NETWORK"
  fi
fi
rm -f "$RUN/sandbox-network"
echo "Shuyu is down (data kept in $DATA_DIR)"
