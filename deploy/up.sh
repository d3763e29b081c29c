#!/usr/bin/env bash
# `make up`: start Shuyu on this machine with the embedded defaults (SQLite, DuckDB, local Docker).
# Safe to run twice: what already runs is left alone. `make down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${1:-var}
BIN=.venv/bin
mkdir -p "$DATA_DIR/run" "$DATA_DIR/logs"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_http() {  # url, name, log file
  for _ in $(seq 1 60); do
    if $BIN/python -c "import httpx,sys; sys.exit(0 if httpx.get('$1', timeout=2).status_code < 500 else 1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  echo "error: $2 did not answer at $1; see $3" >&2
  tail -20 "$3" >&2 || true
  exit 1
}

# --- ledger: database, signing key, service (owns the sequencer) ------------------------------
VKEY=$($BIN/shuyu ledger init --data-dir "$DATA_DIR")
LEDGER_PORT=$($BIN/python -c "from shuyu_server.settings import load_settings as l; print(l().ledger.port)")
LEDGER_HOST=$($BIN/python -c "from shuyu_server.settings import load_settings as l; print(l().ledger.host)")
if running "$DATA_DIR/run/ledger.pid"; then
  echo "ledger service already running (pid $(cat "$DATA_DIR/run/ledger.pid"))"
else
  nohup $BIN/shuyu ledger serve --data-dir "$DATA_DIR" >"$DATA_DIR/logs/ledger.log" 2>&1 &
  echo $! >"$DATA_DIR/run/ledger.pid"
fi
wait_http "http://$LEDGER_HOST:$LEDGER_PORT/checkpoint" "ledger service" "$DATA_DIR/logs/ledger.log"

cat <<MSG

Shuyu is up (data directory: $DATA_DIR)
  ledger service   http://$LEDGER_HOST:$LEDGER_PORT/   (tlog-tiles at /checkpoint and /tile/…, JSON at /api/v1/…)
  ledger vkey      $VKEY
  verify it        .venv/bin/shuyu ledger verify --url http://$LEDGER_HOST:$LEDGER_PORT --vkey '$VKEY'
  stop             make down
MSG
