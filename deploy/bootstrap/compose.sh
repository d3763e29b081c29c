#!/usr/bin/env bash
# Make sure a Compose CLI exists to validate deploy/compose/docker-compose.yml (make test) and
# to run it: `docker compose` (the plugin) or Debian's docker-compose. Safe to run repeatedly.
set -euo pipefail
if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "compose.sh: no Compose CLI; install docker-compose (Debian) or the compose plugin" >&2
  exit 1
fi
echo "compose.sh: installing docker-compose from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq docker-compose >/dev/null
