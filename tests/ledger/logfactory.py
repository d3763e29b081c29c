"""Real logs in temporary data directories, for the service, export, verify and tamper tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ledger.log import Log, LogConfig, init_log
from ledger.note import ALG_COSIGNATURE_V1, Ed25519Signer, signature_for, split_note

# the `shuyu` console script's code, run by this venv's Python (independent of the script file)
SHUYU = [
    sys.executable,
    "-c",
    "import sys; from shuyu_server.cli import main; sys.argv[0] = 'shuyu'; main()",
]


def config(data_dir: Path, origin: str = "shuyu.local/ledger", **db) -> LogConfig:
    url = db.get("url") or f"sqlite:///{data_dir / 'ledger' / 'ledger.db'}"
    return LogConfig(
        ledger_dir=data_dir / "ledger",
        keys_dir=data_dir / "keys",
        database_url=url,
        origin=origin,
        batch_max_size=db.get("batch", 64),
    )


def event(i: int, tag: str = "a") -> dict:
    return {
        "type": "query",
        "actor": f"analyst-{i % 7}",
        "role": "analyst",
        "details": {"n": i, "tag": tag},
        "at": "2026-03-01T08:00:00.000Z",
    }


def make_log(data_dir: Path, sizes: list[int], tag: str = "a", **db) -> tuple[LogConfig, str]:
    """A log whose appends come in requests of the given sizes (one batch or more each)."""
    cfg = config(data_dir, **db)
    vkey, _ = init_log(cfg)
    log = Log.open(cfg)
    try:
        n = 0
        for k in sizes:
            log.append_many([event(i, tag) for i in range(n, n + k)])
            n += k
    finally:
        log.close()
    return cfg, vkey


def grow(cfg: LogConfig, count: int, tag: str = "a") -> None:
    log = Log.open(cfg)
    try:
        n = log.store.head().size
        log.append_many([event(i, tag) for i in range(n, n + count)])
    finally:
        log.close()


def cosign(log: Log, name: str = "regulator.example/witness") -> Ed25519Signer:
    """Register a witness and store its cosignature of the latest checkpoint."""
    witness = Ed25519Signer.generate(name, ALG_COSIGNATURE_V1)
    log.store.add_witness(name, witness.vkey(), None)
    note = log.store.latest_checkpoint()
    text = split_note(note)[0]
    size = int(text.split("\n")[1])
    sig = signature_for(text, witness)
    log.store.add_cosignature(size, sig.line, int(time.time()))
    return witness


REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: no SHUYU_* settings, this checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHUYU_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def shuyu(
    *args: str, input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    env = cli_env()
    return subprocess.run(
        [*SHUYU, *args],
        capture_output=True,
        text=True,
        input=input,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`shuyu ledger serve` in a subprocess on 127.0.0.1, stopped by its pid."""

    def __init__(self, data_dir: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = cli_env()
        self.proc = subprocess.Popen(
            [
                *SHUYU,
                "ledger",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(self.port),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait(self, path: str = "/checkpoint", timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read().decode()}")
            try:
                if httpx.get(self.url + path, timeout=2, trust_env=False).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("ledger service did not start")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out.decode()


_TEMPLATE = (
    '{"actor":"analyst-%d","at":"2026-03-01T08:00:00.000Z","details":{"n":%d},"type":"query","v":1}'
)


def make_big_log(data_dir: Path, n: int, batch: int = 4096) -> tuple[LogConfig, str]:
    """A log of n entries appended through the real batch path, entries from a template
    (canonical JSON by construction), so that tests can afford tens of thousands of entries."""
    from ledger.sqlstore import EntryMeta

    cfg = config(data_dir, batch=batch)
    vkey, _ = init_log(cfg)
    log = Log.open(cfg)
    try:
        size = 0
        while size < n:
            rows = [
                (
                    (_TEMPLATE % (i % 7, i)).encode(),
                    EntryMeta("query", "2026-03-01T08:00:00.000Z", f"analyst-{i % 7}"),
                )
                for i in range(size, min(n, size + batch))
            ]
            assert log.commit_local(rows) == size
            size += len(rows)
    finally:
        log.close()
    return cfg, vkey
