#!/usr/bin/env bash
# `make down`: stop what `make up` started (leaves all data in place).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${1:-var}
for pidfile in "$DATA_DIR"/run/*.pid; do
  [ -e "$pidfile" ] || continue
  name=$(basename "$pidfile" .pid)
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
done
