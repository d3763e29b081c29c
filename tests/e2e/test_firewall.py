"""The host firewall script (deploy/firewall/shuyu-firewall.sh) on the real iptables, and the
spawner's network checks against real Docker networks."""

from __future__ import annotations

import subprocess
from typing import Iterator

import docker
import pytest

from hub.sandbox_policy import SandboxRefused, check_network
from tests.e2e.harness import SandboxNet

pytestmark = [pytest.mark.docker, pytest.mark.e2e]


def rules(bridge: str) -> list[str]:
    out = []
    for tool in ("iptables", "ip6tables"):
        dump = subprocess.run([tool, "-S"], capture_output=True, text=True, check=True).stdout
        out += [f"{tool} {line}" for line in dump.splitlines()
                if bridge in line and "DOCKER-ISOLATION" not in line
                and not (line.startswith("-A FORWARD") and "-j ACCEPT" in line)]
    return sorted(out)


@pytest.fixture
def net() -> Iterator[SandboxNet]:
    n = SandboxNet.create(prefix="f")
    yield n
    n.remove()


def test_apply_is_idempotent_check_is_exact_remove_undoes(net: SandboxNet) -> None:
    assert rules(net.bridge) == []
    assert net.firewall("check", [8000, 8081]).returncode == 1  # nothing applied yet
    assert net.firewall("apply", [8081, 8000]).returncode == 0
    first = rules(net.bridge)
    assert net.firewall("apply", [8000, 8081]).returncode == 0
    assert rules(net.bridge) == first  # same rules, no duplicate jumps
    assert f"iptables -A INPUT -i {net.bridge} -j SHUYU-{net.bridge}" in first
    assert any(f"-d {net.gateway}/32 -p tcp -m multiport --dports 8000,8081" in r for r in first)
    assert net.firewall("check", [8000, 8081]).returncode == 0
    assert net.firewall("check", [8000, 8081, 22]).returncode == 1  # other ports: not ours
    subprocess.run(["iptables", "-D", "INPUT", "-i", net.bridge, "-j", f"SHUYU-{net.bridge}"],
                   check=True)
    assert net.firewall("check", [8000, 8081]).returncode == 1  # a missing jump is noticed
    assert net.firewall("remove").returncode == 0
    assert net.firewall("remove").returncode == 0
    assert rules(net.bridge) == []


@pytest.mark.parametrize("args, message", [
    (["apply", "--bridge", "x;reboot", "--gateway", "1.2.3.4", "--ports", "80"], "--bridge"),
    (["apply", "--bridge", "shuyu-x", "--gateway", "nowhere", "--ports", "80"], "--gateway"),
    (["apply", "--bridge", "shuyu-x", "--gateway", "1.2.3.4", "--ports", "80;22"], "--ports"),
    (["open", "--bridge", "shuyu-x"], "usage"),
])
def test_bad_arguments_are_refused_before_any_change(args: list[str], message: str) -> None:
    from tests.e2e.harness import FIREWALL

    proc = subprocess.run([str(FIREWALL), *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and message in proc.stderr
    assert rules("shuyu-x") == []


def test_spawner_accepts_only_internal_networks(net: SandboxNet) -> None:
    client = docker.from_env()
    try:
        info = check_network(net.name, client.api.inspect_network(net.name))
        assert (info.bridge, info.gateway) == (net.bridge, net.gateway)
        open_net = SandboxNet.create(internal=False, prefix="g")
        try:
            with pytest.raises(SandboxRefused) as err:
                check_network(open_net.name, client.api.inspect_network(open_net.name))
            assert "not internal" in err.value.log_message
        finally:
            open_net.remove()
    finally:
        client.close()
