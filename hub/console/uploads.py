"""Dataset files on their way into the domain store: received, analysed, registered.

An upload lives in ``<data_dir>/console/uploads/<id>/`` (owner-only: it is raw data, on the
server side only) and goes through these states::

    waiting ─► receiving ─► analysing ─► ready ─► registered (files deleted)
                   └────────────┴──────────┴─► failed (files deleted, reason kept)

- ``receive(id, request)`` streams the multipart body to disk as it arrives (never the whole
  file in memory), counting bytes against ``Content-Length`` so the status page can show
  progress, hashing with sha256 on the way, refusing past ``max_bytes``. The form's ``_csrf``
  field comes before the file and is checked before a byte of the file is written.
- analysis then runs in a worker thread: read the table (``tables.read_table``), write it as
  Parquet, and suggest column classes (``suggest.py``), column by column, updating the stage.
- ``status(id)`` is what the status page and the JSON endpoint show.

Status is kept in memory and in ``status.json`` beside the files, so a restarted console still
knows its uploads; an upload that was receiving or analysing when the console stopped is failed
("interrupted").
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from python_multipart.multipart import MultipartParser, parse_options_header

from hub.console import tables
from hub.console.errors import (
    BadRequestToken,
    ConsoleError,
    UploadNotFound,
    UploadNotReady,
    UploadRefused,
)
from hub.console.suggest import Suggestion, suggest_column

ID_CHARS = frozenset("0123456789abcdef")
FILE_FIELD = "file"
MAX_FIELD_BYTES = 4096


@dataclass
class Upload:
    id: str
    created_by: str
    created_at: str
    state: str = "waiting"
    filename: str | None = None
    format: str | None = None
    received: int = 0
    expected: int | None = None
    size: int = 0
    sha256: str | None = None
    rows: int | None = None
    stage: str | None = None
    stage_done: int = 0
    stage_total: int = 0
    columns: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    dataset: str | None = None

    @property
    def percent(self) -> int | None:
        if self.state == "receiving" and self.expected:
            return min(100, int(self.received * 100 / self.expected))
        if self.state == "analysing" and self.stage_total:
            return min(100, int(self.stage_done * 100 / self.stage_total))
        return 100 if self.state in ("ready", "registered") else None

    @property
    def finished(self) -> bool:
        return self.state in ("ready", "registered", "failed")

    def suggestions(self) -> list[Suggestion]:
        return [Suggestion.from_json(c) for c in self.columns]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "percent": self.percent}


def check_id(upload_id: str) -> str:
    if len(upload_id) != 32 or not set(upload_id) <= ID_CHARS:
        raise UploadNotFound(f"there is no upload {upload_id[:40]!r}")
    return upload_id


class _Receiver:
    """Multipart callbacks: small fields into memory, the file part onto disk."""

    def __init__(self, store: "UploadStore", up: Upload, csrf_ok: Callable[[str | None], bool]):
        self.store, self.up, self.csrf_ok = store, up, csrf_ok
        self.fields: dict[str, str] = {}
        self.headers: dict[str, bytes] = {}
        self._field, self._value = b"", b""
        self.name: str | None = None
        self.buffer = bytearray()
        self.file = None
        self.digest = hashlib.sha256()
        self.error: ConsoleError | None = None
        self.saw_file = False

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self.headers, self.name, self.buffer = {}, None, bytearray()
        self._field, self._value = b"", b""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        self.headers[self._field.decode("latin-1").lower()] = bytes(self._value)
        self._field, self._value = b"", b""

    def headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get("content-disposition", b""))
        self.name = params.get(b"name", b"").decode("utf-8", "replace")
        if self.name != FILE_FIELD or self.error:
            return
        if not self.csrf_ok(self.fields.get("_csrf")):
            self.error = BadRequestToken("the upload form's security token is missing or wrong "
                                         "(the _csrf field must come before the file); reload "
                                         "the form and try again")
            return
        filename = params.get(b"filename", b"").decode("utf-8", "replace")
        self.up.filename = Path(filename.replace("\\", "/")).name[:200] or "upload"
        self.file = open(self.store.source_path(self.up.id), "wb")
        self.saw_file = True

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error:
            return
        chunk = data[start:end]
        if self.name == FILE_FIELD and self.file is not None:
            self.up.size += len(chunk)
            if self.up.size > self.store.max_bytes:
                self.error = UploadRefused(f"the file is larger than the limit of "
                                           f"{self.store.max_bytes:,} bytes")
                return
            self.digest.update(chunk)
            self.file.write(chunk)
        elif len(self.buffer) + len(chunk) <= MAX_FIELD_BYTES:
            self.buffer += chunk

    def part_end(self) -> None:
        if self.name and self.name != FILE_FIELD:
            self.fields[self.name] = self.buffer.decode("utf-8", "replace")
        if self.file is not None and self.name == FILE_FIELD:
            self.file.close()
            self.file = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class UploadStore:
    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-analysis")
        self._load()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- files ---------------------------------------------------------------------------

    def dir(self, upload_id: str) -> Path:
        return self.root / check_id(upload_id)

    def source_path(self, upload_id: str) -> Path:
        return self.dir(upload_id) / "source"

    def parquet_path(self, upload_id: str) -> Path:
        return self.dir(upload_id) / "data.parquet"

    def _save(self, up: Upload) -> None:
        path = self.dir(up.id) / "status.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(up.to_json(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def _load(self) -> None:
        if not self.root.is_dir():
            return
        for status in self.root.glob("*/status.json"):
            try:
                data = json.loads(status.read_text(encoding="utf-8"))
                data.pop("percent", None)
                up = Upload(**data)
            except (OSError, ValueError, TypeError):
                continue
            if up.state in ("receiving", "analysing", "waiting"):
                self._fail(up, "interrupted: the console stopped before the upload finished; "
                               "upload the file again")
            self._uploads[up.id] = up

    def _drop_files(self, up: Upload) -> None:
        for name in ("source", "data.parquet", "final.parquet"):
            (self.dir(up.id) / name).unlink(missing_ok=True)

    def _fail(self, up: Upload, message: str) -> None:
        up.state, up.error, up.stage = "failed", message, None
        self._drop_files(up)
        self._save(up)

    # --- lifecycle -----------------------------------------------------------------------

    def new(self, created_by: str) -> Upload:
        up = Upload(secrets.token_hex(16), created_by,
                    datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir(up.id).mkdir(mode=0o700)
        with self._lock:
            self._uploads[up.id] = up
        self._save(up)
        return up

    def get(self, upload_id: str) -> Upload:
        with self._lock:
            up = self._uploads.get(check_id(upload_id))
        if up is None:
            raise UploadNotFound(f"there is no upload {upload_id}")
        return up

    def list(self) -> list[Upload]:
        with self._lock:
            return sorted(self._uploads.values(), key=lambda u: u.created_at, reverse=True)

    async def receive(self, upload_id: str, content_type: str | None,
                      content_length: str | None, body: AsyncIterator[bytes],
                      csrf_ok: Callable[[str | None], bool]) -> Upload:
        """Stream one multipart body to disk (see the module doc); then start the analysis."""
        up = self.get(upload_id)
        if up.state != "waiting":
            raise UploadNotReady(f"upload {upload_id} has been sent already ({up.state}); "
                                 "start a new one")
        ctype, params = parse_options_header(content_type or "")
        boundary = params.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise UploadRefused("send the file as multipart/form-data (the upload form does)")
        up.expected = int(content_length) if (content_length or "").isascii() and (content_length or "").isdigit() else None
        if up.expected is not None and up.expected > self.max_bytes + 64 * 1024:
            raise UploadRefused(f"the file is larger than the limit of {self.max_bytes:,} bytes")
        up.state = "receiving"
        receiver = _Receiver(self, up, csrf_ok)
        parser = MultipartParser(boundary, receiver.callbacks())
        try:
            async for chunk in body:
                up.received += len(chunk)
                parser.write(chunk)
                if receiver.error:
                    break
            else:
                parser.finalize()
        except Exception as e:  # a broken body: the parser's errors have no common base
            receiver.close()
            self._fail(up, f"the upload was not a well-formed form: {type(e).__name__}")
            raise UploadRefused(up.error or "") from None
        receiver.close()
        if receiver.error:
            self._fail(up, receiver.error.message)
            raise receiver.error
        if not receiver.saw_file or up.size == 0:
            self._fail(up, "no file was sent (choose a CSV or Parquet file)")
            raise UploadRefused(up.error or "")
        up.sha256 = receiver.digest.hexdigest()
        up.state, up.stage = "analysing", "reading"
        self._save(up)
        self._pool.submit(self._analyse, up)
        return up

    def _analyse(self, up: Upload) -> None:
        try:
            src = self.source_path(up.id)
            up.format = tables.sniff_format(src, up.filename or "")
            table = tables.read_table(src, up.format)
            up.rows = table.num_rows
            up.stage = "writing"
            types = tables.write_parquet(table, self.parquet_path(up.id))
            up.stage, up.stage_total, up.stage_done = "scanning", len(types), 0
            columns = []
            for (name, typ), col in zip(types, table.columns):
                columns.append(suggest_column(name, typ, col))
                up.stage_done += 1
            up.columns = [c.to_json() for c in columns]
            src.unlink(missing_ok=True)
            up.state, up.stage = "ready", None
            self._save(up)
        except ConsoleError as e:
            self._fail(up, e.message)
        except Exception as e:  # noqa: BLE001 - any reader failure fails this upload only
            self._fail(up, f"the file could not be analysed: {type(e).__name__}: {e}"[:500])

    def wait(self, upload_id: str, timeout: float = 60.0) -> Upload:
        """Block until the upload is ready or failed (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        up = self.get(upload_id)
        while not up.finished and time.monotonic() < deadline:
            time.sleep(0.05)
        return up

    def mark_registered(self, upload_id: str, dataset: str) -> None:
        up = self.get(upload_id)
        up.state, up.dataset = "registered", dataset
        self._drop_files(up)
        self._save(up)

    def discard(self, upload_id: str) -> None:
        up = self.get(upload_id)
        if up.state in ("receiving", "analysing"):
            raise UploadNotReady(f"upload {upload_id} is still {up.state}; wait for it to finish")
        with self._lock:
            self._uploads.pop(up.id, None)
        shutil.rmtree(self.dir(up.id), ignore_errors=True)
