"""Processes the stress tests start: a sequencer, and appenders that record what was acknowledged.

Run as ``python -m tests.ledger.procs sequencer CONFIG`` or
``python -m tests.ledger.procs appender CONFIG ACKFILE [options]`` where CONFIG is a JSON file
written by :func:`write_config`.

An appender writes one line per acknowledged entry to ACKFILE *after* its append returned:
``<index> <request id> <hex of the entry bytes>``. Whatever the file holds when the process is
killed was acknowledged, so it must be in the log with identical bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ledger.entry import encode_entry, utc_now_ms
from ledger.exceptions import LedgerUnavailable
from ledger.log import Log, LogConfig, Sequencer, init_log

REPO = Path(__file__).resolve().parents[2]


def write_config(cfg: LogConfig, path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "ledger_dir": str(cfg.ledger_dir),
                "keys_dir": str(cfg.keys_dir),
                "database_url": cfg.database_url,
                "origin": cfg.origin,
                "batch_max_size": cfg.batch_max_size,
                "batch_max_age": cfg.batch_max_age,
            }
        )
    )
    return path


def read_config(path: str) -> LogConfig:
    raw = json.loads(Path(path).read_text())
    return LogConfig(
        ledger_dir=Path(raw["ledger_dir"]),
        keys_dir=Path(raw["keys_dir"]),
        database_url=raw["database_url"],
        origin=raw["origin"],
        batch_max_size=raw["batch_max_size"],
        batch_max_age=raw["batch_max_age"],
    )


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.ledger.procs", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


# --- starting and stopping them from a test ---------------------------------------------------

STARTED: list[subprocess.Popen] = []  # every process a test started, killed at its teardown


def make_config(tmp_path: Path, **kw: Any) -> tuple[LogConfig, Path]:
    """An initialized SQLite log under tmp_path, and the config file the processes read."""
    cfg = LogConfig(
        ledger_dir=tmp_path / "ledger",
        keys_dir=tmp_path / "keys",
        database_url=f"sqlite:///{tmp_path / 'ledger' / 'ledger.db'}",
        origin="test.shuyu.local/ledger",
        **kw,
    )
    init_log(cfg)
    return cfg, write_config(cfg, tmp_path / "config.json")


def start_sequencer(config: Path) -> subprocess.Popen:
    proc = subprocess.Popen(command("sequencer", str(config)), env=env(),
                            stdout=subprocess.PIPE, text=True)
    STARTED.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"sequencer did not start (exit {proc.poll()})"
    return proc


def start_appender(config: Path, ackfile: Path, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        command("appender", str(config), str(ackfile), *args), env=env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, wait, close its pipes."""
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    """Wait for a process to end by itself; it must exit 0. Returns its stdout."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}: {(err or '')[-2000:]}"
    return out


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


def kill_started() -> None:
    """Kill whatever a test left running (a failed assertion must not leak appenders)."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


def read_acks(path: Path) -> list[tuple[int, int, bytes]]:
    """(index, request id, bytes) of every complete ack line (a torn last line is ignored)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        index, request, data = line.split()
        out.append((int(index), int(request), bytes.fromhex(data)))
    return out


# --- the sequencer -------------------------------------------------------------------------


def run_sequencer(config: str) -> None:
    log = Log.open(read_config(config))
    seq = Sequencer(log)
    seq.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    seq.stop()
    log.close()


# --- an appender ---------------------------------------------------------------------------


class AckWriter:
    def __init__(self, path: Path, log: Log | None):
        self.f = open(path, "a")
        self.lock = threading.Lock()
        self.log = log  # when set: check each ack is committed and covered by a checkpoint

    def write(self, index: int, request: int, data: bytes) -> None:
        if self.log is not None:
            stored = self.log.store.entries(index, index + 1)
            assert stored and stored[0][1] == data, f"acknowledged {index} is not committed"
            newest = self.log.store.head().size
            assert self.log.store.checkpoint_at(newest) is not None and newest > index
        with self.lock:
            self.f.write(f"{index} {request} {data.hex()}\n")
            self.f.flush()


def event(tag: str, request: int, seq: int) -> dict:
    return {
        "type": "test.append",
        "actor": f"pid-{os.getpid()}",
        "details": {"pid": os.getpid(), "request": request, "seq": seq, "tag": tag},
    }


def run_appender(config: str, ackfile: str, args: argparse.Namespace) -> None:
    cfg = read_config(config)
    log = Log.open(cfg)
    appender = log.appender()
    if args.expect == "remote" and not appender.remote:
        sys.exit("expected a running sequencer")
    if args.expect == "local" and appender.remote:
        sys.exit("expected no sequencer")
    checker = Log.open(cfg) if args.check_visible else None
    acks = AckWriter(Path(ackfile), checker)
    if args.start_file:
        while not Path(args.start_file).exists():
            time.sleep(0.01)
    failures = 0
    next_request = [args.request_base]
    lock = threading.Lock()

    def new_request() -> int:
        with lock:
            next_request[0] += 1
            return next_request[0]

    def pipelined(count: int) -> None:
        nonlocal failures
        window: deque = deque()
        for k in range(count):
            req = new_request()
            ev = {**event(args.tag, req, 0), "at": utc_now_ms()}
            try:
                window.append((req, encode_entry(ev), appender.append_async(ev)))
            except LedgerUnavailable:
                failures += 1
            while len(window) > args.window or (k == count - 1 and window):
                req, data, fut = window.popleft()
                try:
                    index = fut.result()
                except LedgerUnavailable:
                    failures += 1
                    continue
                acks.write(index, req, data)

    def batched(count: int) -> None:
        nonlocal failures
        for _ in range(count):
            req = new_request()
            events = [event(args.tag, req, s) for s in range(args.chunk)]
            for ev in events:
                ev["at"] = utc_now_ms()
            try:
                indices = appender.append_many(events)
            except LedgerUnavailable:
                failures += 1
                continue
            assert indices == list(range(indices[0], indices[0] + len(events)))
            for index, ev in zip(indices, events):
                acks.write(index, req, encode_entry(ev))

    errors: list[BaseException] = []

    def guarded(fn, count):  # type: ignore[no-untyped-def]
        try:
            fn(count)
        except BaseException as e:  # noqa: BLE001 - reported through the exit status
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(pipelined, args.count))]
    if args.chunk:
        threads.append(threading.Thread(target=guarded, args=(batched, args.batches)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    if checker:
        checker.close()
    if errors:
        sys.exit(f"appender failed: {errors[0]!r}")
    print(f"done failures={failures}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sequencer")
    s.add_argument("config")
    a = sub.add_parser("appender")
    a.add_argument("config")
    a.add_argument("ackfile")
    a.add_argument("--count", type=int, default=200, help="single appends (append_async)")
    a.add_argument("--window", type=int, default=8, help="appends kept in flight")
    a.add_argument("--chunk", type=int, default=0, help="entries per append_many request")
    a.add_argument("--batches", type=int, default=0, help="append_many requests")
    a.add_argument("--tag", default="t")
    a.add_argument("--request-base", type=int, default=0)
    a.add_argument("--expect", choices=("remote", "local", "any"), default="any")
    a.add_argument("--check-visible", action="store_true")
    a.add_argument("--start-file", default="")
    args = ap.parse_args()
    if args.cmd == "sequencer":
        run_sequencer(args.config)
    else:
        run_appender(args.config, args.ackfile, args)


if __name__ == "__main__":
    main()
