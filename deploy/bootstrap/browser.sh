#!/usr/bin/env bash
# What the browser tests need: Debian's Chromium at /usr/bin/chromium (Playwright for Python
# drives it with executable_path; Playwright's own browser download cannot work here) and fonts
# with Chinese glyphs, so screenshots of Chinese pages show text rather than boxes.
# Installs from Debian's packages when missing. Safe to run repeatedly.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list 2>/dev/null | grep -qi "noto sans cjk\|wqy\|droid sans fallback" || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing ${need[*]}: install them from Debian's packages (as root)" >&2
    exit 1
  fi
  echo "installing ${need[*]} from Debian's packages" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "browser ready: $(/usr/bin/chromium --version 2>/dev/null | head -1)" >&2
