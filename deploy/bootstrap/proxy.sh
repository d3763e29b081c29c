#!/usr/bin/env bash
# Make sure JupyterHub's proxy, configurable-http-proxy, is installed at the pinned version.
#
# Installs it globally from the npm registry when it is missing or at another version (Debian's
# own package is 4.5.3 and does not start beside Node 20). Needs Node >= 20. Safe to run repeatedly.
set -euo pipefail
VERSION=${SHUYU_CHP_VERSION:-5.3.0}

say() { echo "proxy.sh: $*" >&2; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "Node.js and npm are missing; configurable-http-proxy $VERSION needs Node >= 20"
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  say "Node $(node --version) is too old; configurable-http-proxy $VERSION needs Node >= 20"
  exit 1
fi

installed=""
if command -v configurable-http-proxy >/dev/null; then
  installed=$(configurable-http-proxy --version 2>/dev/null || true)
fi
if [ "$installed" = "$VERSION" ]; then
  say "configurable-http-proxy $VERSION already installed ($(command -v configurable-http-proxy))"
  exit 0
fi

say "installing configurable-http-proxy@$VERSION from npm${installed:+ (found $installed)}"
npm install --global --no-fund --no-audit --loglevel=error "configurable-http-proxy@$VERSION" >&2
installed=$(configurable-http-proxy --version)
if [ "$installed" != "$VERSION" ]; then
  say "installed configurable-http-proxy reports version '$installed', expected $VERSION"
  exit 1
fi
say "configurable-http-proxy $VERSION installed ($(command -v configurable-http-proxy))"
