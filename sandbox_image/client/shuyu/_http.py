"""HTTP to the platform's services: one keep-alive connection on the standard library.

The gateway's fixed cost per query is part of every analysis, so the client keeps its own share
small: httpx added ~0.7 ms to each request over ``http.client`` on the same machine (keep-alive,
small JSON bodies; ``BENCHMARKS.md``).
What the client needs and nothing more: a base URL, default headers, JSON or byte bodies
(an iterable of chunks streams an upload), query parameters, a connect timeout and a read
timeout, no proxies from the environment, no redirects followed.

A connection idle for longer than ``IDLE_SECONDS`` is replaced before it is used again, well
before servers close idle ones (uvicorn and the proxy: 5 s), so a request never races the
server's close. A connection that failed is dropped; the request is not repeated (a query must
not run twice), and the caller gets the error.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import socket
import time
from dataclasses import dataclass
from email.message import Message
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode, urlsplit

IDLE_SECONDS = 2.0


class HttpError(OSError):
    """The service could not be reached, or the connection failed during the request."""


@dataclass
class Response:
    status_code: int
    reason_phrase: str
    headers: Message
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class Http:
    """Requests to one service at `base_url` (``http://`` or ``https://``), one at a time."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float,
                 connect_timeout: float = 10.0):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/") + "/"
        self._headers = dict(headers)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def request(self, method: str, path: str, *, json: Any = None,
                content: bytes | Iterable[bytes] | None = None,
                params: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        """Send one request and read the whole answer; ``HttpError`` if that fails."""
        url = self._prefix + path.lstrip("/")
        if params:
            url += "?" + urlencode(params)
        sent = {**self._headers, **(headers or {})}
        body = content
        if json is not None:
            body = jsonlib.dumps(json, ensure_ascii=False).encode()
            sent["Content-Type"] = "application/json"
        conn = self._connection()
        try:
            conn.request(method, url, body=body, headers=sent)
            answer = conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise HttpError(_describe(e)) from None
        if answer.will_close:
            self.close()
        else:
            self._last_used = time.monotonic()
        return Response(answer.status, answer.reason, answer.headers, data)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is not None and time.monotonic() - self._last_used > IDLE_SECONDS:
            self.close()
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._connect_timeout)
            try:
                conn.connect()
            except OSError as e:
                conn.close()
                raise HttpError(_describe(e)) from None
            assert conn.sock is not None
            conn.sock.settimeout(self._timeout)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _describe(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "timed out"
    text = str(e) or type(e).__name__
    return text if text.startswith(type(e).__name__) else f"{type(e).__name__}: {text}"
