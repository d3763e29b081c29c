"""One-off set-up of a Compose deployment (the ``init`` service; runs in the host's network
namespace with NET_ADMIN and the Docker socket), safe to run on every ``up``:

1. refuses placeholder secrets (``CHANGE…``) in the environment;
2. makes the internal sandbox network ``$SHUYU_SANDBOX_NETWORK`` (bridge ``shuyu-sandbox``) if
   it is missing, and refuses one that exists but is not internal;
3. applies the host firewall for it (``deploy/firewall/shuyu-firewall.sh``): the sandbox bridge
   reaches the hub API, the proxy and the query gateway ports and nothing else;
4. initializes the ledger (database and signing key; ``shuyu ledger init`` is idempotent).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[2]
BRIDGE = "shuyu-sandbox"


def fail(message: str) -> None:
    print(f"init: {message}", file=sys.stderr)
    sys.exit(1)


def check_secrets() -> None:
    for key, value in os.environ.items():
        if key.startswith("SHUYU_") and "CHANGE" in value:
            fail(f"{key} still holds the placeholder from env.example; set a real value")


def ensure_network(client: docker.DockerClient, name: str) -> tuple[str, str]:
    found = client.networks.list(names=[name])
    if not found:
        client.networks.create(name, driver="bridge", internal=True,
                               options={"com.docker.network.bridge.name": BRIDGE},
                               labels={"org.shuyu.network": "sandbox"})
        print(f"init: created internal network {name}")
    attrs = client.api.inspect_network(name)
    if not attrs.get("Internal"):
        fail(f"network {name} exists but is not internal; remove it and run again")
    bridge = (attrs.get("Options") or {}).get("com.docker.network.bridge.name") \
        or f"br-{attrs['Id'][:12]}"
    gateway = attrs["IPAM"]["Config"][0]["Gateway"]
    return bridge, gateway


def main() -> None:
    check_secrets()
    client = docker.from_env()
    try:
        bridge, gateway = ensure_network(client, os.environ.get("SHUYU_SANDBOX_NETWORK",
                                                                "shuyu-sandbox"))
    finally:
        client.close()
    ports = ",".join(os.environ.get(name, default) for name, default in (
        ("SHUYU_HUB_PORT", "8000"), ("SHUYU_HUB_API_PORT", "8081"), ("SHUYU_GATEWAY_PORT", "8030")))
    subprocess.run([str(REPO / "deploy/firewall/shuyu-firewall.sh"), "apply", "--bridge", bridge,
                    "--gateway", gateway, "--ports", ports], check=True)
    subprocess.run(["shuyu", "ledger", "init"], check=True)
    print("init: host ready")


if __name__ == "__main__":
    main()
