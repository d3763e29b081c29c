"""A hub-managed service ends when the process that started it dies (shuyu_server.lifecycle)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CHILD = ("import time; from shuyu_server.lifecycle import end_with_hub; "
         "print(end_with_hub(), flush=True); time.sleep(120)")
PARENT = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], start_new_session=True,
                         stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(env: dict[str, str]) -> tuple[subprocess.Popen, int, str]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              env=env, cwd=Path(__file__).parents[2])
    pid, armed = parent.stdout.readline().split()
    return parent, int(pid), armed


def test_a_service_started_by_the_hub_ends_with_it() -> None:
    parent, child, armed = _start({**os.environ, "JUPYTERHUB_SERVICE_NAME": "gateway"})
    assert armed == "True"
    assert _running(child)
    parent.send_signal(signal.SIGKILL)  # the hub dies without stopping anything
    parent.wait(10)
    parent.stdout.close()
    deadline = time.monotonic() + 30
    while _running(child):
        assert time.monotonic() < deadline, "the service outlived the hub"
        time.sleep(0.1)


def test_outside_the_hub_nothing_is_armed() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JUPYTERHUB_SERVICE_NAME"}
    parent, child, armed = _start(env)
    try:
        assert armed == "False"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        parent.stdout.close()
        time.sleep(0.5)
        assert _running(child)  # a service run by hand stays up (control)
    finally:
        os.kill(child, signal.SIGKILL)
