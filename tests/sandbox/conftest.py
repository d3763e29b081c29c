"""Fixtures for the sandbox image tests: the built image and hardened containers of it.

Everything runs on the real Docker engine (``make test`` starts it with
deploy/bootstrap/docker.sh). The image is built by the offline builder and reused while its
inputs are unchanged, so only the first run after a change pays for a build. Containers run
with the flags the hub uses and ``--network none``: the tests reach the server inside through
``docker exec`` (tests/sandbox/probe.py), never over a network.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox_image.build import BuildResult, ensure_image

PROBE = (Path(__file__).parent / "probe.py").read_text()
TEST_LABEL = "org.shuyu.test=sandbox"
HOME = "/home/analyst"
WORK = f"{HOME}/work"
SERVER_PORT = 8888
READY_DEADLINE_S = 90

# The isolation flags of a sandbox container, as the hub's spawner sets them.
HARDENED = (
    "--read-only",
    "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=256m",
    "--tmpfs", f"{HOME}:rw,nosuid,nodev,noexec,size=256m,uid=1000,gid=1000,mode=0700",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--user", "1000:1000",
    "--pids-limit", "256",
    "--memory", "1g",
    "--network", "none",
)


def docker(*args: str, check: bool = True, stdin: str | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; on failure with ``check`` the error names the command and stderr."""
    proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} failed: {proc.stderr.strip()}")
    return proc


@dataclass
class Sandbox:
    """A running sandbox container and the ways the tests act inside it."""

    name: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def run(self, *cmd: str, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``docker exec`` as the container's user; returns the finished process, unchecked."""
        flags = ["-i"] if stdin is not None else []
        for key, value in (env or {}).items():
            flags += ["--env", f"{key}={value}"]
        return docker("exec", *flags, self.name, *cmd, stdin=stdin, check=False)

    def python(self, code: str) -> str:
        """Run Python code in the container; its stdout, or an assertion error with stderr."""
        proc = self.run("python", "-c", code)
        assert proc.returncode == 0, f"python in the sandbox failed: {proc.stderr}"
        return proc.stdout

    def probe(self, action: str, port: int = SERVER_PORT, **args: object) -> object:
        """Run tests/sandbox/probe.py in the container against the server on ``port``."""
        payload = json.dumps({"action": action, "port": port, "token": self.token, **args})
        proc = self.run("python", "-", payload, stdin=PROBE)
        assert proc.returncode == 0, f"probe {action} failed: {proc.stderr[-3000:]}"
        return json.loads(proc.stdout)

    def get(self, path: str, port: int = SERVER_PORT) -> dict:
        return self.probe("http", port=port, requests=[{"path": path}])[0]

    def start_server(self, port: int, env: dict[str, str] | None = None) -> None:
        """Start another Jupyter server in the container (in the background) and wait for it."""
        command = (f"exec jupyter server --IdentityProvider.token={self.token} "
                   f"--ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
                   f"--ServerApp.root_dir={WORK} >/tmp/server-{port}.log 2>&1")
        flags = ["--detach"]
        for key, value in (env or {}).items():
            flags += ["--env", f"{key}={value}"]
        docker("exec", *flags, self.name, "sh", "-c", command)
        self.wait_ready(port)

    def wait_ready(self, port: int = SERVER_PORT) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            if self.probe("ready", port=port):
                return
            time.sleep(0.5)
        log = self.run("sh", "-c", f"cat /tmp/server-{port}.log 2>/dev/null").stdout
        log = log or docker("logs", self.name, check=False).stderr
        raise AssertionError(f"no Jupyter server answered on port {port}: {log[-3000:]}")

    def write(self, path: str, text: str) -> None:
        code = ("import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
                "p.parent.mkdir(parents=True, exist_ok=True); p.write_text(sys.stdin.read())")
        proc = self.run("python", "-c", code, path, stdin=text)
        assert proc.returncode == 0, f"writing {path} in the sandbox failed: {proc.stderr}"


def start_container(image: str, command: Sequence[str], flags: Sequence[str] = HARDENED,
                    token: str | None = None) -> Sandbox:
    """``docker run -d`` the image with ``flags``; ``command`` goes through the entry point."""
    sandbox = Sandbox(name=f"shuyu-test-sandbox-{uuid.uuid4().hex[:10]}")
    if token:
        sandbox.token = token
    docker("run", "--detach", "--name", sandbox.name, "--label", TEST_LABEL, *flags, image,
           *command)
    return sandbox


def stop_container(sandbox: Sandbox) -> None:
    docker("rm", "--force", sandbox.name, check=False)


@pytest.fixture(scope="session")
def sandbox_image() -> BuildResult:
    """The sandbox image built from the current inputs (offline path), reused when unchanged."""
    engine = docker("info", "--format", "{{.ServerVersion}}", check=False)
    assert engine.returncode == 0, (
        "no Docker engine answers; start it with deploy/bootstrap/docker.sh "
        f"({engine.stderr.strip()})"
    )
    return ensure_image()


@pytest.fixture(scope="module")
def idle_sandbox(sandbox_image: BuildResult) -> Iterator[Sandbox]:
    """A hardened container whose main process idles, for looking around inside."""
    sandbox = start_container(sandbox_image.ref, ["sleep", "infinity"])
    try:
        yield sandbox
    finally:
        stop_container(sandbox)


@pytest.fixture(scope="module")
def server_sandbox(sandbox_image: BuildResult) -> Iterator[Sandbox]:
    """A hardened container whose main process is a token-protected Jupyter server."""
    token = uuid.uuid4().hex
    command = ["jupyter", "server", f"--IdentityProvider.token={token}",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={SERVER_PORT}"]
    sandbox = start_container(sandbox_image.ref, command, token=token)
    try:
        sandbox.wait_ready()
        yield sandbox
    finally:
        stop_container(sandbox)
