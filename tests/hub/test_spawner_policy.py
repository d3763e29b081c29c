"""The container checks of the sandbox spawner (hub/sandbox_policy.py), table-driven, and the
sandbox layer of the hub config (hub/spawner.py ``configure_spawner``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from docker.types import Mount
from traitlets.config import Config

from hub.jupyterhub_config import SERVER_TOKEN_SCOPES, apply, hub_options
from hub.sandbox_policy import (
    Limits,
    SandboxRefused,
    check_host_config,
    check_mounts,
    check_network,
    check_volume_options,
    hardened_host_config,
)
from hub.spawner import ShuyuSpawner, post_stop_hook, pre_spawn_hook

NET = "shuyu-sandbox"


def hardened(**changes: object) -> dict:
    host = {**hardened_host_config(NET, Limits()), "mem_limit": "2g", "cpu_quota": 100_000,
            "cpu_period": 100_000}
    host.update(changes)
    return host


def test_the_hardened_config_passes() -> None:
    check_host_config(hardened(), NET)


@pytest.mark.parametrize("changes, problem", [
    ({"read_only": False}, "read_only"),
    ({"privileged": True}, "privileged"),
    ({"cap_drop": ["NET_RAW"]}, "capability"),
    ({"cap_add": ["SYS_ADMIN"]}, "cap_add"),
    ({"security_opt": []}, "no-new-privileges"),
    ({"security_opt": ["no-new-privileges:false"]}, "no-new-privileges"),
    ({"security_opt": ["no-new-privileges", "seccomp=unconfined"]}, "unconfined"),
    ({"pids_limit": 0}, "pids_limit"),
    ({"mem_limit": None}, "mem_limit"),
    ({"cpu_quota": None}, "cpu_quota"),
    ({"network_mode": "bridge"}, "network"),
    ({"network_mode": "host"}, "network"),
    ({"devices": ["/dev/fuse:/dev/fuse"]}, "devices"),
    ({"port_bindings": {8888: ("0.0.0.0",)}}, "port_bindings"),
    ({"pid_mode": "host"}, "pid_mode"),
    ({"ipc_mode": "host"}, "ipc_mode"),
    ({"userns_mode": "host"}, "userns_mode"),
    ({"extra_hosts": {"x": "1.2.3.4"}}, "extra_hosts"),
])
def test_weakened_host_configs_are_refused(changes: dict, problem: str) -> None:
    with pytest.raises(SandboxRefused) as err:
        check_host_config(hardened(**changes), NET)
    assert err.value.reason == "hardening"
    assert problem in err.value.log_message
    assert "not safe" in err.value.message  # the user sees no internals
    assert err.value.status_code == 403


@pytest.mark.parametrize("source", [
    "{data}", "{data}/domain", "{data}/domain/domain.duckdb", "{data}/keys", "{data}/../",
    "/", "/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run/containerd",
])
def test_host_paths_into_the_data_dir_or_the_engine_are_refused(tmp_path: Path,
                                                               source: str) -> None:
    data = tmp_path / "var"
    (data / "domain").mkdir(parents=True)
    path = source.format(data=data)
    with pytest.raises(SandboxRefused) as err:
        check_mounts({path: {"bind": "/home/analyst/work/x", "mode": "ro"}}, [], data,
                     allowed_host_paths=["/"])
    assert err.value.reason == "mount"
    assert str(data) not in err.value.message  # host paths go to the log, not to users
    assert "overlaps" in err.value.log_message or "engine" in err.value.log_message


def test_symlinks_into_the_data_dir_are_followed(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    link = tmp_path / "innocent"
    link.symlink_to(data)
    with pytest.raises(SandboxRefused):
        check_mounts({str(link): {"bind": "/data"}}, [], data, allowed_host_paths=[str(tmp_path)])


def test_host_paths_need_the_allow_list(tmp_path: Path) -> None:
    data, shared = tmp_path / "var", tmp_path / "reference"
    data.mkdir()
    shared.mkdir()
    binds = {str(shared): {"bind": "/reference", "mode": "ro"}}
    with pytest.raises(SandboxRefused) as err:
        check_mounts(binds, [], data)
    assert "allow" in err.value.log_message
    check_mounts(binds, [], data, allowed_host_paths=[str(shared)])


def test_named_volumes_pass_and_bind_mount_objects_are_checked(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    check_mounts({"shuyu-work-alice": {"bind": "/home/analyst/work", "mode": "rw"}}, [], data)
    check_mounts({}, [Mount("/home/analyst/x", "some-volume", type="volume")], data)
    with pytest.raises(SandboxRefused):
        check_mounts({}, [Mount("/home/analyst/x", str(data), type="bind")], data,
                     allowed_host_paths=[str(tmp_path)])
    with pytest.raises(SandboxRefused):
        check_mounts({}, [{"type": "npipe", "source": "x", "target": "/y"}], data)


def test_named_volumes_backed_by_the_data_dir_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    check_volume_options("v", {}, data)
    check_volume_options("v", {"type": "tmpfs", "device": "tmpfs"}, data)
    with pytest.raises(SandboxRefused):
        check_volume_options("v", {"type": "none", "o": "bind", "device": str(data / "domain")},
                             data)


def test_the_network_must_be_internal_with_a_gateway() -> None:
    good = {"Id": "f" * 64, "Internal": True, "Options": {},
            "IPAM": {"Config": [{"Subnet": "172.30.0.0/16", "Gateway": "172.30.0.1"}]}}
    info = check_network(NET, good)
    assert (info.bridge, info.gateway, info.subnet) == ("br-ffffffffffff", "172.30.0.1",
                                                        "172.30.0.0/16")
    named = {**good, "Options": {"com.docker.network.bridge.name": "shuyu-sbx"}}
    assert check_network(NET, named).bridge == "shuyu-sbx"
    for bad, why in [(None, "does not exist"), ({**good, "Internal": False}, "not internal"),
                     ({**good, "IPAM": {"Config": []}}, "no IPv4 gateway")]:
        with pytest.raises(SandboxRefused) as err:
            check_network(NET, bad)
        assert why in err.value.log_message and err.value.status_code == 503


def test_configure_spawner_sets_the_hardened_spawner(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("SHUYU_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SHUYU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHUYU_SANDBOX_MEMORY", "1g")
    c = Config()
    opts = apply(c, hub_options())
    assert c.JupyterHub.spawner_class is ShuyuSpawner
    s = c.ShuyuSpawner
    assert s.image == "shuyu-sandbox:latest" and s.allowed_images == ["shuyu-sandbox:latest"]
    assert (s.pull_policy, s.remove, s.network_name) == ("never", True, "shuyu-sandbox")
    assert s.mem_limit == "1G" and s.data_dir == str(opts.data_dir)
    assert s.volumes == {"shuyu-work-{username}": "/home/analyst/work"}
    assert c.Spawner.pre_spawn_hook is pre_spawn_hook
    assert c.Spawner.post_stop_hook is post_stop_hook
    assert c.Spawner.disable_user_config is True
    # the server token: activity, its own server and the gateway; nothing else
    assert c.Spawner.server_token_scopes == SERVER_TOKEN_SCOPES
    assert {"users:activity!user", "access:servers!server",
            "custom:shuyu:query"} <= set(SERVER_TOKEN_SCOPES)
    others = set(SERVER_TOKEN_SCOPES) - {"users:activity!user", "access:servers!server"}
    assert all(s.startswith("custom:shuyu:") for s in others), others  # the platform's own
    watchdog = [r for r in c.JupyterHub.load_roles if r["name"] == "shuyu-watchdog"][0]
    assert set(watchdog["scopes"]) == {"list:users", "read:users:name", "read:users:groups",
                                       "read:servers", "servers"}
    names = [s["name"] for s in c.JupyterHub.services]
    assert "gateway" in names and names[-1] == "watchdog"
    # sandboxes reach the hub, the proxy and the gateway through the network gateway address
    assert c.JupyterHub.hub_ip == "0.0.0.0" and c.JupyterHub.ip == "0.0.0.0"
    gateway = [s for s in c.JupyterHub.services if s["name"] == "gateway"][0]
    assert gateway["url"] == f"http://127.0.0.1:{opts.gateway_port}"  # the proxy's route
    assert gateway["environment"]["SHUYU_GATEWAY_SANDBOX_IP"] == "0.0.0.0"  # where the proxy is
    assert s.gateway_port == opts.gateway_port == 8030 and s.proxy_port == 8000


def spawner_at(**config: object) -> ShuyuSpawner:
    """A spawner with just the traits these checks read (no hub, no Docker)."""
    spawner = ShuyuSpawner.__new__(ShuyuSpawner)
    for name, value in config.items():
        spawner.set_trait(name, value)
    return spawner


def test_sandboxes_call_the_gateway_at_its_own_port_through_the_firewall() -> None:
    net = check_network(NET, {"Id": "f" * 64, "Internal": True, "Options": {},
                              "IPAM": {"Config": [{"Subnet": "172.30.0.0/16",
                                                   "Gateway": "172.30.0.1"}]}})
    direct = spawner_at(proxy_port=8000, gateway_port=8030)
    assert direct.sandbox_gateway_url(net) == "http://172.30.0.1:8030/services/gateway/"
    assert direct.sandbox_base_url(net) == "http://172.30.0.1:8000"  # the review service's
    proxied = spawner_at(proxy_port=8000, gateway_port=0)
    assert proxied.sandbox_gateway_url(net) == "http://172.30.0.1:8000/services/gateway/"
    # a proxy address set by the operator (TLS in front, another host): the gateway behind it
    elsewhere = spawner_at(proxy_port=8000, gateway_port=8030,
                           sandbox_url="https://hub.example.internal/")
    assert (elsewhere.sandbox_gateway_url(net)
            == "https://hub.example.internal/services/gateway/")


def test_the_firewall_check_expects_the_gateway_port_open(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    class Hub:
        port = 8081

    monkeypatch.setattr(ShuyuSpawner, "hub", Hub(), raising=False)
    assert spawner_at(proxy_port=8000, gateway_port=8030).firewall_ports() == [8000, 8030, 8081]
    assert spawner_at(proxy_port=8000, gateway_port=0).firewall_ports() == [8000, 8081]


def test_a_hub_without_sandboxes_keeps_the_base_config(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUYU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHUYU_HUB_SANDBOXES", "off")
    c = Config()
    apply(c, hub_options())
    assert "spawner_class" not in c.JupyterHub
    assert c.JupyterHub.hub_ip == "127.0.0.1"
    gateway = [s for s in c.JupyterHub.services if s["name"] == "gateway"][0]
    assert "SHUYU_GATEWAY_SANDBOX_IP" not in gateway["environment"]  # loopback only
