#!/usr/bin/env bash
# Make sure a Docker engine runs on this host, for `make up` and `make test`.
#
# Installs Debian's docker.io (and debootstrap, which the offline image builder needs) when the
# engine is missing, starts dockerd in the background when it is not running (these hosts have no
# systemd; the daemon logs to $SHUYU_DOCKERD_LOG), then waits until `docker info` answers.
# Prints one line per thing it did. Safe to run repeatedly; it never stops a running engine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
LOG=${SHUYU_DOCKERD_LOG:-/var/log/shuyu-dockerd.log}
WAIT=${SHUYU_DOCKERD_WAIT:-60}

say() { echo "docker.sh: $*" >&2; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing ${need[*]}; install them (Debian: apt-get install ${need[*]}) or run as root" 
    exit 1
  fi
  say "installing ${need[*]} from Debian's packages"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  say "engine already running ($(docker info --format '{{.ServerVersion}}' 2>/dev/null))"
  exit 0
fi

if pgrep -x dockerd >/dev/null; then
  say "dockerd is starting (pid $(pgrep -x dockerd | head -1)); waiting for it"
else
  if [ "$(id -u)" != 0 ]; then
    say "dockerd is not running and only root can start it"
    exit 1
  fi
  # A stale pid file from a killed daemon makes dockerd refuse to start.
  for pidfile in /var/run/docker.pid /run/docker/containerd/containerd.pid; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      rm -f "$pidfile"
    fi
  done
  mkdir -p "$(dirname "$LOG")"
  say "starting dockerd in the background (log: $LOG)"
  nohup setsid dockerd >>"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$WAIT"); do
  if docker info >/dev/null 2>&1; then
    say "engine ready ($(docker info --format '{{.ServerVersion}}, {{.Driver}}, cgroup v{{.CgroupVersion}}'))"
    exit 0
  fi
  sleep 1
done
say "dockerd did not answer within ${WAIT}s; last lines of $LOG:"
tail -n 20 "$LOG" >&2 || true
exit 1
