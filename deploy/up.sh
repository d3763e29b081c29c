#!/usr/bin/env bash
# `make up`: the whole system on this machine (SQLite, DuckDB, local Docker), run as root.
#
#   1. the Docker engine (installed from Debian's packages and started when missing) and the
#      proxy (configurable-http-proxy from npm);
#   2. the sandbox image, built offline from a local Debian base and a wheelhouse (or from
#      $SHUYU_IMAGE_BASE, a registry image, when that registry answers);
#   3. the internal sandbox network and the host firewall that confines it to the hub API, the
#      proxy and the query gateway;
#   4. the data directory: ledger (database, signing key), control database, domain store with
#      synthetic demo data, the catalog, a demo authorization, accounts for every role;
#   5. the hub, which runs its services (gateway, review, console, ledger, regulator actions,
#      sandbox watchdog); it prints the URL and the demo accounts.
# Safe to run twice: what exists is reused, what runs is left alone. `make down` stops it.
#
# Settings (environment): SHUYU_HUB_PORT (8000), SHUYU_HUB_API_PORT (8081), SHUYU_GATEWAY_PORT (8030),
# SHUYU_SANDBOX_NETWORK (shuyu-sandbox), SHUYU_DEMO_SCALE (2000 residents), SHUYU_IMAGE_BASE.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
DATA_DIR=$(realpath -m "${1:-var}")
BIN=$REPO/.venv/bin
export SHUYU_DATA_DIR=$DATA_DIR
export SHUYU_HUB_IP=${SHUYU_HUB_IP:-0.0.0.0}
export SHUYU_HUB_PORT=${SHUYU_HUB_PORT:-8000}
export SHUYU_HUB_API_PORT=${SHUYU_HUB_API_PORT:-8081}
export SHUYU_GATEWAY_PORT=${SHUYU_GATEWAY_PORT:-8030}
export SHUYU_SANDBOX_NETWORK=${SHUYU_SANDBOX_NETWORK:-shuyu-sandbox}
BRIDGE=${SHUYU_SANDBOX_BRIDGE:-shuyu-sandbox}
RUN=$DATA_DIR/run
LOGS=$DATA_DIR/logs

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "$(id -u)" != 0 ]; then
  echo "make up runs as root: it installs packages, starts Docker and sets firewall rules" >&2
  exit 1
fi
mkdir -p "$RUN" "$LOGS"
chmod 0700 "$DATA_DIR"

say "Docker engine and proxy"
bash deploy/bootstrap/docker.sh
bash deploy/bootstrap/proxy.sh
command -v iptables >/dev/null || { apt-get update -qq; apt-get install -y -qq iptables >/dev/null; }

say "sandbox image"
base_args=()
if [ -n "${SHUYU_IMAGE_BASE:-}" ]; then
  if docker image inspect "$SHUYU_IMAGE_BASE" >/dev/null 2>&1 \
     || timeout 120 docker pull -q "$SHUYU_IMAGE_BASE" >/dev/null 2>&1; then
    base_args=(--base "$SHUYU_IMAGE_BASE")
  else
    echo "no registry answers for $SHUYU_IMAGE_BASE: building offline from Debian's packages" >&2
  fi
fi
"$BIN/python" sandbox_image/build.py "${base_args[@]}"

say "sandbox network and firewall"
if ! docker network inspect "$SHUYU_SANDBOX_NETWORK" >/dev/null 2>&1; then
  docker network create --internal --label org.shuyu.network=sandbox \
    -o "com.docker.network.bridge.name=$BRIDGE" "$SHUYU_SANDBOX_NETWORK" >/dev/null
  echo "created internal network $SHUYU_SANDBOX_NETWORK (bridge $BRIDGE)" >&2
fi
if [ "$(docker network inspect -f '{{.Internal}}' "$SHUYU_SANDBOX_NETWORK")" != true ]; then
  echo "network $SHUYU_SANDBOX_NETWORK exists but is not internal; remove it (make down)" >&2
  exit 1
fi
BRIDGE=$(docker network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$SHUYU_SANDBOX_NETWORK")
[ -n "$BRIDGE" ] && [ "$BRIDGE" != "<no value>" ] \
  || BRIDGE="br-$(docker network inspect -f '{{.Id}}' "$SHUYU_SANDBOX_NETWORK" | cut -c1-12)"
GATEWAY=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$SHUYU_SANDBOX_NETWORK")
bash deploy/firewall/shuyu-firewall.sh apply --bridge "$BRIDGE" --gateway "$GATEWAY" \
  --ports "$SHUYU_HUB_PORT,$SHUYU_HUB_API_PORT,$SHUYU_GATEWAY_PORT"
echo "$SHUYU_SANDBOX_NETWORK $BRIDGE" >"$RUN/sandbox-network"

say "data directory $DATA_DIR"
VKEY=$("$BIN/shuyu" ledger init --data-dir "$DATA_DIR")
"$BIN/python" -m hub.demo --data-dir "$DATA_DIR" --scale "${SHUYU_DEMO_SCALE:-2000}" \
  --url "http://127.0.0.1:$SHUYU_HUB_PORT" >/dev/null

say "hub and services"
if running "$RUN/hub.pid"; then
  echo "the hub already runs (pid $(cat "$RUN/hub.pid"))" >&2
else
  # shellcheck disable=SC2094
  (cd "$RUN" && exec setsid nohup "$BIN/jupyterhub" -f "$REPO/hub/jupyterhub_config.py" \
     >>"$LOGS/jupyterhub.log" 2>&1 </dev/null) &
  echo $! >"$RUN/hub.pid"
fi
URL="http://127.0.0.1:$SHUYU_HUB_PORT"
for _ in $(seq 1 180); do
  if "$BIN/python" - "$URL" <<'PY' 2>/dev/null
import sys, httpx
base = sys.argv[1]
ok = all(httpx.get(base + p, timeout=3, trust_env=False).status_code == 200
         for p in ("/hub/api/", "/services/gateway/health", "/services/ledger/checkpoint"))
sys.exit(0 if ok else 1)
PY
  then break; fi
  if ! running "$RUN/hub.pid"; then
    echo "the hub stopped; last lines of $LOGS/jupyterhub.log:" >&2
    tail -n 30 "$LOGS/jupyterhub.log" >&2
    exit 1
  fi
  sleep 1
done
"$BIN/python" - "$URL" <<'PY' || { echo "the hub did not come up in 3 minutes; see $LOGS/jupyterhub.log" >&2; exit 1; }
import sys, httpx
sys.exit(0 if httpx.get(sys.argv[1] + "/hub/api/", timeout=3, trust_env=False).status_code == 200 else 1)
PY

"$BIN/python" -m hub.demo --data-dir "$DATA_DIR" --print --url "$URL"
cat <<MSG

Shuyu is up (data directory: $DATA_DIR)
  log in           $URL/hub/login            (analysts get a sandbox; others their consoles)
  ledger           $URL/services/ledger/     vkey: $VKEY
  verify it        .venv/bin/shuyu ledger verify --data-dir $DATA_DIR --vkey '$VKEY'
                   (over HTTP: --url $URL/services/ledger --token <a regulator's hub token>)
  logs             $LOGS/jupyterhub.log (hub and every service)
  stop             make down
MSG
