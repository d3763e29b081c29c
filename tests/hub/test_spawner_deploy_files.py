"""The production deployment files: the Compose file validated by the Compose CLI (installed by
``make test``), and the Kubernetes values rendered: the chart's hub config snippets run against
a config that holds what the chart sets first, and the egress rules read back."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

from hub.spawner import post_stop_hook, pre_spawn_hook

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose" / "docker-compose.yml"
K8S = REPO / "deploy" / "kubernetes"


def compose_cli() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True,
                      check=False).returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    assert found, "no Compose CLI: make test installs one (deploy/bootstrap/compose.sh)"
    return [found]


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHUYU_")}
    return subprocess.run([*compose_cli(), "-f", str(COMPOSE), "config"], cwd=COMPOSE.parent,
                          env={**clean, **env}, capture_output=True, text=True, check=False)


def test_compose_file_is_valid_and_wires_the_hub_as_intended() -> None:
    done = compose_config({"SHUYU_POSTGRES_PASSWORD": "s3cret-for-the-test"})
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "init", "hub"}
    hub = services["hub"]
    assert hub["network_mode"] == "host"
    assert hub["depends_on"]["init"]["condition"] == "service_completed_successfully"
    env = hub["environment"]
    assert env["SHUYU_CONTROL__DATABASE_URL"].startswith("postgresql+psycopg://shuyu:s3cret")
    assert "@127.0.0.1:5432/shuyu_ledger" in env["SHUYU_LEDGER__DATABASE_URL"]
    assert env["SHUYU_SANDBOX_NETWORK"] == "shuyu-sandbox"
    pg = services["postgres"]
    assert pg["networks"] == {"backend": None} or list(pg["networks"]) == ["backend"]
    published = pg["ports"][0]
    assert (published.get("host_ip") if isinstance(published, dict)
            else published.split(":")[0]) == "127.0.0.1"
    assert services["init"]["command"] == ["python", "deploy/compose/init_host.py"]


def test_compose_refuses_to_render_without_a_database_password() -> None:
    done = compose_config({})
    assert done.returncode != 0
    assert "SHUYU_POSTGRES_PASSWORD" in done.stderr


def test_compose_init_refuses_placeholder_secrets() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHUYU_")}
    env["SHUYU_POSTGRES_PASSWORD"] = "CHANGE-to-a-long-random-password"
    done = subprocess.run([str(REPO / ".venv/bin/python"),
                           str(REPO / "deploy/compose/init_host.py")], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1 and "placeholder" in done.stderr


def values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


def render_hub_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Run the chart's extraConfig snippets, in the chart's order, after what the chart sets."""
    for key in [k for k in os.environ if k.startswith("SHUYU_")]:
        monkeypatch.delenv(key)
    for key, value in values()["hub"]["extraEnv"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SHUYU_DATA_DIR", str(tmp_path))
    c = Config()
    c.JupyterHub.hub_ip = "0.0.0.0"
    c.JupyterHub.hub_connect_ip = "hub"
    c.JupyterHub.db_url = "postgresql+psycopg2://shuyu@shuyu-postgres/jupyterhub"
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = "http://proxy-api:8001"
    for name, code in sorted(values()["hub"]["extraConfig"].items()):
        exec(compile(code, f"extraConfig/{name}", "exec"), {"c": c, "get_config": lambda: c})
    return c


def test_kubernetes_hub_config_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = render_hub_config(tmp_path, monkeypatch)
    assert c.JupyterHub.spawner_class == "kubespawner.KubeSpawner"  # the chart's, kept
    assert c.JupyterHub.db_url.startswith("postgresql")
    assert (c.JupyterHub.hub_ip, c.JupyterHub.hub_connect_ip) == ("0.0.0.0", "hub")
    assert c.ConfigurableHTTPProxy.api_url == "http://proxy-api:8001"
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.Spawner.pre_spawn_hook is pre_spawn_hook
    assert c.Spawner.post_stop_hook is post_stop_hook
    assert "watchdog" in [s["name"] for s in c.JupyterHub.services]
    assert c.JupyterHub.authenticator_class == "hub.auth.ShuyuAuthenticator"
    security = c.KubeSpawner.container_security_context
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["allowPrivilegeEscalation"] is False and security["runAsUser"] == 1000
    assert c.KubeSpawner.automount_service_account_token is False
    assert c.KubeSpawner.profile_list == []


def test_kubernetes_sandboxes_reach_only_the_hub_and_the_proxy() -> None:
    single = values()["singleuser"]
    rules = single["networkPolicy"]["egressAllowRules"]
    assert single["networkPolicy"]["enabled"] is True and single["networkPolicy"]["egress"] == []
    assert {k for k, v in rules.items() if v} == {"dnsPortsKubeSystemNamespace"}
    assert single["cloudMetadata"]["blockWithIptables"] is True
    assert single["uid"] == 1000 and single["storage"]["homeMountPath"] == "/home/analyst/work"
    policy = yaml.safe_load((K8S / "sandbox-egress-networkpolicy.yaml").read_text())
    assert policy["kind"] == "NetworkPolicy"
    assert set(policy["spec"]["policyTypes"]) == {"Egress", "Ingress"}
    allowed = sorted((rule["to"][0]["podSelector"]["matchLabels"].get("component")
                      or rule["to"][0]["podSelector"]["matchLabels"].get("k8s-app"),
                      tuple(sorted(p["port"] for p in rule["ports"])))
                     for rule in policy["spec"]["egress"])
    assert allowed == [("hub", (8081,)), ("kube-dns", (53, 53)), ("proxy", (8000,))]
