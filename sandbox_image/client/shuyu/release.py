"""Submitting outputs for release review, from a notebook in the sandbox.

>>> import shuyu
>>> r = shuyu.release.submit(df, title="各区县公交刷卡量", purpose="线网优化报告附表",
...                          context="counts of boardings per district, one week")
>>> r                                   # status and every automatic check's verdict
>>> shuyu.release.submit(["chart.png", "table.csv"], supporting=["notes.md"], title=…, purpose=…)
>>> shuyu.release.status()              # your requests
>>> shuyu.release.dp({"dataset": "social_insurance", "group_by": ["payment_status"],
...                   "measures": [{"op": "count"}], "epsilon": 0.5}, title=…, purpose=…)

Nothing leaves the sandbox except through review: files go to the review service's quarantine,
are checked automatically and approved by reviewers (two for 重要 data); the released package
(files, provenance, ledger proof) is then downloaded in a browser from the review service, never
into the sandbox. You declare nothing the system can find out: the datasets and columns your
queries touched come from the ledger and the catalog.

Accepted: pandas or polars DataFrames and Arrow tables (sent as Parquet), and CSV, Parquet, PNG,
JSON, TXT, Markdown and HTML files. The client talks to the review service over HTTP with this
sandbox's hub token (``JUPYTERHUB_API_TOKEN``), at ``SHUYU_REVIEW_URL`` (default: beside the
gateway, ``…/services/review/``).
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from shuyu._http import Http
from shuyu.errors import (
    ConfigurationError,
    ShuyuError,
    error_for,
    problem,
    send,
)

ALLOWED = {".csv", ".parquet", ".png", ".json", ".txt", ".md", ".markdown", ".html", ".htm"}
REVIEW_URL = "SHUYU_REVIEW_URL"
CHUNK = 1 << 20
PROGRESS_BYTES = 4 << 20


class ReleaseRefused(ShuyuError):
    """The review service refused the request or the act; the reason says what and why."""


@dataclass
class ReleaseRequest:
    """One of your release requests as the review service reports it."""

    id: str
    status: str
    title: str
    round: int
    grade: str
    required_approvals: int
    datasets: list[str]
    review_url: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    votes: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ReleaseRequest":
        return cls(d["id"], d["status"], d["title"], d["round"], d["grade"],
                   d["required_approvals"], list(d.get("datasets") or []), d["review_url"],
                   list(d.get("checks") or []), list(d.get("votes") or []),
                   list(d.get("comments") or []), list(d.get("files") or []), d)

    def __str__(self) -> str:
        lines = [f"{self.id} {self.title!r}: {self.status} (round {self.round}); grade "
                 f"{self.grade}, {self.required_approvals} approval(s) needed; sources: "
                 f"{', '.join(self.datasets) or '(none)'}"]
        for c in self.checks:
            where = f" [{c['artifact']}]" if c.get("artifact") else ""
            lines.append(f"  {c['verdict'].upper():6} {c['check']}{where}: {c['reason']}")
        for v in self.votes:
            lines.append(f"  vote: {v['decision']} by {v['reviewer']}"
                         + (f": {v['comment']}" if v.get("comment") else ""))
        for c in self.comments:
            lines.append(f"  comment by {c['author']}: {c['text']}")
        if self.status == "released":
            lines.append(f"  download it in your browser: {self.review_url}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def review_url_from_environment() -> str:
    url = os.environ.get(REVIEW_URL, "").strip()
    if url:
        return url
    gateway = os.environ.get("SHUYU_GATEWAY_URL", "").strip().rstrip("/")
    if gateway.endswith("/services/gateway"):
        return gateway[: -len("gateway")] + "review/"
    raise ConfigurationError(f"{REVIEW_URL} (or SHUYU_GATEWAY_URL) is not set: shuyu runs inside "
                             "a Shuyu sandbox, whose server sets them", "not_configured")


class ReleaseClient:
    """A connection to the review service; the module's functions use one made from the env."""

    def __init__(self, review_url: str | None = None, token: str | None = None,
                 authorization: str | None = None, timeout: float = 600.0):
        url = review_url or review_url_from_environment()
        token = token or os.environ.get("JUPYTERHUB_API_TOKEN", "").strip()
        if not token:
            raise ConfigurationError("JUPYTERHUB_API_TOKEN is not set: shuyu runs inside a "
                                     "Shuyu sandbox (or pass token=)", "not_configured")
        self.authorization = authorization or os.environ.get("SHUYU_AUTHORIZATION") or None
        self._http = Http(url, {"Authorization": f"token {token}",
                                "User-Agent": "shuyu-client"}, timeout)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        response = send(self._http, "review service", method, path, **kw)
        if response.status_code >= 400:
            code, reason = problem(response)
            if response.status_code in (403, 409, 422, 429) or code in ("invalid_input",):
                raise ReleaseRefused(reason, code, response.status_code)
            if response.status_code == 400:
                raise ReleaseRefused(reason, code, 400)
            raise error_for(response.status_code, code, reason)
        return response.json()

    # --- files --------------------------------------------------------------------------

    def upload(self, name: str, data: bytes) -> dict[str, Any]:
        size = len(data)
        return self._request("POST", "api/uploads", content=_chunks(name, data, size),
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Length": str(size)})

    def _send(self, items: Any, supporting: Any) -> list[dict[str, Any]]:
        files = [(n, d, True) for n, d in _items(items)]
        files += [(n, d, False) for n, d in _items(supporting)]
        names = [n for n, _, _ in files]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ShuyuError(f"two files are named {dupes[0]!r}; pass (name, object) pairs to "
                             "name them apart", "bad_argument")
        out = []
        for name, data, released in files:
            stored = self.upload(name, data)
            out.append({"name": name, "sha256": stored["sha256"],
                        "media_type": _media_type(name), "released": released})
        return out

    # --- requests -----------------------------------------------------------------------

    def submit(self, items: Any, *, title: str, purpose: str, context: str = "",
               supporting: Any = (), wait: bool = True, timeout: float = 600.0
               ) -> ReleaseRequest:
        files = self._send(items, supporting)
        body = {"title": title, "purpose": purpose, "context": context,
                "authorization": self.authorization, "files": files}
        created = self._request("POST", "api/requests", json=body)
        return self.wait(created["id"], timeout) if wait else self.get(created["id"])

    def get(self, request_id: str) -> ReleaseRequest:
        return ReleaseRequest.from_json(self._request("GET", f"api/requests/{request_id}"))

    def wait(self, request_id: str, timeout: float = 600.0) -> ReleaseRequest:
        """The request once its automatic checks are done (or as it is at `timeout`)."""
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            request = self.get(request_id)
            if request.status != "submitted" or time.monotonic() >= deadline:
                return request
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def status(self) -> list[ReleaseRequest]:
        return [ReleaseRequest.from_json({**r, "checks": []})
                for r in self._request("GET", "api/requests")]

    def withdraw(self, request_id: str, reason: str = "") -> ReleaseRequest:
        self._request("POST", f"api/requests/{request_id}/withdraw", json={"reason": reason})
        return self.get(request_id)

    def resubmit(self, request_id: str, items: Any, *, note: str = "", supporting: Any = (),
                 context: str | None = None, wait: bool = True) -> ReleaseRequest:
        files = self._send(items, supporting)
        self._request("POST", f"api/requests/{request_id}/resubmit",
                      json={"files": files, "note": note, "context": context})
        return self.wait(request_id) if wait else self.get(request_id)

    def comment(self, request_id: str, text: str) -> dict[str, Any]:
        return self._request("POST", f"api/requests/{request_id}/comments", json={"text": text})

    def dp(self, spec: dict[str, Any], *, title: str, purpose: str, context: str = "",
           wait: bool = True) -> dict[str, Any]:
        """DP statistics computed in the review service; returns the result (values with 95%
        intervals, ε spent, budget left) and puts it up for review as a release request."""
        body = {"spec": spec, "title": title, "purpose": purpose, "context": context,
                "authorization": self.authorization}
        out = self._request("POST", "api/dp", json=body)
        result = dict(out["result"])
        request = self.wait(out["request"]["id"]) if wait else \
            ReleaseRequest.from_json(out["request"])
        result["request"] = request
        return result


def _media_type(name: str) -> str:
    return {".csv": "text/csv", ".parquet": "application/vnd.apache.parquet",
            ".png": "image/png", ".json": "application/json", ".txt": "text/plain",
            ".md": "text/markdown", ".markdown": "text/markdown", ".html": "text/html",
            ".htm": "text/html"}.get(Path(name).suffix.lower(), "application/octet-stream")


def _items(items: Any) -> list[tuple[str, bytes]]:
    """(name, bytes) of each thing to send: frames become Parquet, paths are read."""
    if items is None:
        return []
    if isinstance(items, (str, os.PathLike)) or _is_frame(items) or (
            isinstance(items, tuple) and len(items) == 2 and isinstance(items[0], str)):
        items = [items]
    out = []
    for i, item in enumerate(items):
        name = None
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, item = item
        if _is_frame(item):
            out.append((name or ("table.parquet" if i == 0 else f"table-{i + 1}.parquet"),
                        _parquet(item)))
            continue
        path = Path(item)
        if not path.is_file():
            raise ShuyuError(f"{item!r} is neither a DataFrame nor a file", "bad_argument")
        name = name or path.name
        if Path(name).suffix.lower() not in ALLOWED:
            raise ShuyuError(f"{name}: {Path(name).suffix or 'no extension'} is not a type that "
                             "can be released (CSV, Parquet, PNG, JSON, TXT, Markdown, HTML)",
                             "bad_argument")
        out.append((name, path.read_bytes()))
    return out


def _is_frame(obj: Any) -> bool:
    kind = type(obj).__module__.split(".")[0]
    return kind in ("pandas", "polars", "pyarrow") and hasattr(obj, "columns")


def _parquet(frame: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = type(frame).__module__.split(".")[0]
    if kind == "pandas":
        table = pa.Table.from_pandas(frame, preserve_index=False)
    elif kind == "polars":
        table = frame.to_arrow()
    else:
        table = frame
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _chunks(name: str, data: bytes, size: int) -> Iterator[bytes]:
    if size <= PROGRESS_BYTES:
        yield data
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn(f"[bold]shuyu[/] upload {name}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), transient=True) as bar:
        task = bar.add_task("upload", total=size)
        for start in range(0, size, CHUNK):
            chunk = data[start:start + CHUNK]
            bar.advance(task, len(chunk))
            yield chunk


# --- the module's functions, on a client made from the sandbox's environment ----------------

_default: ReleaseClient | None = None


def client() -> ReleaseClient:
    global _default
    if _default is None:
        _default = ReleaseClient()
    return _default


def submit(obj_or_path: Any, *, title: str, purpose: str, context: str = "",
           supporting: Any = (), wait: bool = True) -> ReleaseRequest:
    """Submit files or DataFrames for release review; waits for the automatic checks.

    `obj_or_path`: a DataFrame, a file path, a ``(name, DataFrame or path)`` pair, or a list of
    them; `supporting`: files the reviewers should see that are not to be released.
    """
    return client().submit(obj_or_path, title=title, purpose=purpose, context=context,
                           supporting=supporting, wait=wait)


def status(request_id: str | None = None) -> Any:
    """Your requests (a list), or one request with its checks, votes and comments."""
    return client().get(request_id) if request_id else client().status()


def dp(spec: dict[str, Any], *, title: str, purpose: str, context: str = "") -> dict[str, Any]:
    """Differentially private statistics (see ``shuyu.release`` docs); returns the result."""
    return client().dp(spec, title=title, purpose=purpose, context=context)


def withdraw(request_id: str, reason: str = "") -> ReleaseRequest:
    return client().withdraw(request_id, reason)


def resubmit(request_id: str, obj_or_path: Any, *, note: str = "", supporting: Any = (),
             context: str | None = None) -> ReleaseRequest:
    """Amend a returned request with a new set of files; it is checked again."""
    return client().resubmit(request_id, obj_or_path, note=note, supporting=supporting,
                             context=context)


__all__ = ["ReleaseClient", "ReleaseRefused", "ReleaseRequest", "client", "dp", "resubmit",
           "status", "submit", "withdraw"]
