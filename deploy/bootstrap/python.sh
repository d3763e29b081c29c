#!/usr/bin/env bash
# Make sure Python 3.11 with venv support exists (Debian 12 ships it as python3.11).
set -euo pipefail
PY=${1:-python3.11}
if command -v "$PY" >/dev/null && "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "Python 3.11 with venv is missing; install python3.11 and python3.11-venv" >&2
  exit 1
fi
echo "installing Python 3.11 and venv from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3.11 python3.11-venv python3-pip >/dev/null
