"""Sandbox spawn times and hub API latency on the real system (Docker, hub, firewall).

``python -m bench.bench_spawn`` (root) stands the system up as the end-to-end tests do (a data
domain, accounts, an internal network behind the production firewall script, the hub with every
service) and measures:

- **cold spawn**: an analyst's first start: a new work volume, a new container, the server's
  first boot, until the hub reports it ready and the server answers through the proxy;
- **warm spawn**: the same analyst again after a stop (volume and image layers in place);
  the goal is 5 s or less on the 2-core machines;
- **concurrent spawns**: several analysts starting at once (the pre-spawn gate, ledger writes
  and Docker all contend);
- **hub API latency** with 20 simulated users at once, each with its own token, for a fixed
  time: ``GET /hub/api/user`` (what every service does per request) and ``GET
  /hub/api/users/<self>`` (what a spawn page polls), as percentiles and requests per second.

Times are end to end as a user sees them: from the POST that asks for the server to the first
200 from ``/user/<name>/api/status`` through the proxy. Results go to
``bench/results/spawn/<UTC time>.json``; BENCHMARKS.md records them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import dump, machine, percentiles, results_dir

SIM_USERS = 20
PASSWORD = "bench-sandbox-Passw0rd"


def _spawn_and_wait(api: httpx.Client, public: httpx.Client, user: str, token: str,
                    timeout: float = 300) -> dict[str, float]:
    started = time.perf_counter()
    r = api.post(f"users/{user}/server", json={})
    if r.status_code not in (201, 202):
        raise RuntimeError(f"spawn of {user}: {r.status_code} {r.text}")
    ready_at = None
    while time.perf_counter() - started < timeout:
        if ready_at is None:
            server = (api.get(f"users/{user}").json().get("servers") or {}).get("")
            if server and server.get("ready"):
                ready_at = time.perf_counter()
        if ready_at is not None:
            status = public.get(f"/user/{user}/api/status",
                                headers={"Authorization": f"token {token}"})
            if status.status_code == 200:
                done = time.perf_counter()
                return {"hub_ready_s": round(ready_at - started, 3),
                        "answering_s": round(done - started, 3)}
        time.sleep(0.1)
    raise RuntimeError(f"{user}'s server not answering after {timeout:.0f} s")


def _stop_and_wait(api: httpx.Client, user: str, timeout: float = 120) -> float:
    started = time.perf_counter()
    api.delete(f"users/{user}/server")
    while time.perf_counter() - started < timeout:
        if not (api.get(f"users/{user}").json().get("servers") or {}).get(""):
            return round(time.perf_counter() - started, 3)
        time.sleep(0.2)
    raise RuntimeError(f"{user}'s server did not stop in {timeout:.0f} s")


def _api_latency(api_url: str, tokens: dict[str, str], seconds: float) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"whoami": [], "own_user": []}
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def simulate(user: str, token: str) -> None:
        with httpx.Client(base_url=api_url + "/", timeout=30, trust_env=False,
                          headers={"Authorization": f"token {token}"}) as client:
            mine: dict[str, list[float]] = {"whoami": [], "own_user": []}
            while time.perf_counter() < stop_at:
                for kind, path in (("whoami", "user"), ("own_user", f"users/{user}")):
                    t = time.perf_counter()
                    r = client.get(path)
                    mine[kind].append(time.perf_counter() - t)
                    if r.status_code != 200:
                        with lock:
                            errors.append(f"{path}: {r.status_code}")
            with lock:
                for kind, xs in mine.items():
                    samples[kind].extend(xs)

    threads = [threading.Thread(target=simulate, args=item) for item in tokens.items()]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    total = sum(len(xs) for xs in samples.values())
    return {"users": len(tokens), "seconds": round(wall, 1), "requests": total,
            "requests_per_s": round(total / wall, 1), "errors": errors[:5],
            "error_count": len(errors),
            **{kind: percentiles(xs) for kind, xs in samples.items()}}


def run(warm_rounds: int = 5, concurrent: int = 4, api_seconds: float = 30.0) -> dict:
    """Stand the system up, measure, tear it down; returns the report."""
    from hub.accounts import ensure_account, hub_db_url
    from sandbox_image.build import ensure_image
    from tests.e2e.harness import Ports, SandboxNet, SystemHub, docker
    from tests.gateway.world import build_world

    if os.geteuid() != 0:
        raise RuntimeError("bench_spawn applies host firewall rules: run it as root")
    image = ensure_image()
    base = Path(tempfile.mkdtemp(prefix="shuyu-bench-spawn-"))
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHUYU_")}
    try:
        world = build_world(base / "world", scale=1000)
    finally:
        os.environ.update(saved)
    analysts = ["alice", "bob", "carol", "frank"][:max(1, concurrent)]
    for name in ["alice", "bob", "carol", "frank"]:
        ensure_account(hub_db_url(world.data_dir), name, PASSWORD, ["analysts"])
    _grant_frank(world)
    net = SandboxNet.create(prefix="b")
    ports = Ports.free()
    hub = None
    report: dict[str, Any] = {"image": image.ref, "image_mb": round(image.size_bytes / 1e6)}
    try:
        applied = net.firewall("apply", [ports.public, ports.api])
        if applied.returncode != 0:
            raise RuntimeError(applied.stderr)
        hub = SystemHub.start(world.data_dir, net, {
            "SHUYU_SANDBOX_PREFIX": net.name, "SHUYU_SANDBOX_IMAGE": image.ref}, ports)
        with hub.admin() as api, httpx.Client(base_url=hub.public_url, timeout=60,
                                              trust_env=False) as public:
            tokens = {u: api.post(f"users/{u}/tokens", json={"note": "bench"}).json()["token"]
                      for u in analysts}
            cold = _spawn_and_wait(api, public, "alice", tokens["alice"])
            report["cold_spawn"] = {**cold, "stop_s": _stop_and_wait(api, "alice")}
            warm = []
            for _ in range(warm_rounds):
                warm.append(_spawn_and_wait(api, public, "alice", tokens["alice"]))
                _stop_and_wait(api, "alice")
            report["warm_spawn"] = {
                "rounds": warm,
                "answering": percentiles([w["answering_s"] for w in warm]),
                "hub_ready": percentiles([w["hub_ready_s"] for w in warm]),
            }
            report["concurrent_spawns"] = _concurrent(api, public, analysts, tokens)
            sim = _simulated_users(api, SIM_USERS)
            report["hub_api_20_users"] = _api_latency(hub.api_url, sim, api_seconds)
            for u in analysts:
                _stop_and_wait(api, u)
    finally:
        if hub is not None:
            hub.stop()
        net.remove()
        for volume in docker("volume", "ls", "-q", "--filter", f"name={net.name}-work-",
                             check=False).stdout.split():
            docker("volume", "rm", "-f", volume, check=False)
        shutil.rmtree(base, ignore_errors=True)
    return report


def _grant_frank(world: Any) -> None:
    from datetime import timedelta

    from hub.catalog.agreements import ScopeRequest
    from hub.catalog.enums import AccessMode
    from tests.gateway.world import AUTHORITY, OPERATOR

    service, log = world.open_catalog()
    try:
        now = service.now()
        service.create_authorization(
            AUTHORITY, operator=OPERATOR, analysts=["frank"],
            scope=[ScopeRequest("enterprises", None, AccessMode.ROW_LEVEL)],
            scenario="基准测试", use_class="public_governance",
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30))
    finally:
        log.close()


def _concurrent(api: httpx.Client, public: httpx.Client, users: list[str],
                tokens: dict[str, str]) -> dict[str, Any]:
    results: dict[str, Any] = {}

    def one(user: str) -> None:
        try:
            results[user] = _spawn_and_wait(api, public, user, tokens[user])
        except Exception as e:  # noqa: BLE001 - reported in the results
            results[user] = {"error": str(e)}

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"users": len(users), "all_answering_s": round(time.perf_counter() - started, 3),
            "each": results}


def _simulated_users(api: httpx.Client, n: int) -> dict[str, str]:
    tokens = {}
    for i in range(n):
        name = f"sim{i:02d}"
        api.post(f"users/{name}")
        tokens[name] = api.post(f"users/{name}/tokens", json={"note": "bench"}).json()["token"]
    return tokens


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_spawn",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--warm-rounds", type=int, default=5)
    ap.add_argument("--concurrent", type=int, default=4)
    ap.add_argument("--api-seconds", type=float, default=30.0)
    args = ap.parse_args()
    report = {"machine": machine(),
              **run(args.warm_rounds, args.concurrent, args.api_seconds)}
    text = dump(report)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (results_dir("spawn") / f"{stamp}.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
