"""The client's HTTP connection (``shuyu._http``) against a real HTTP/1.1 server on loopback:
keep-alive, idle and closed connections replaced, bodies streamed, errors that say what failed,
and a request never sent twice."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from shuyu import _http
from shuyu._http import Http, HttpError
from shuyu.errors import GatewayUnavailable, send


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append({"method": self.command, "path": self.path, "port": self.client_address[1],
                          "body": body, "headers": dict(self.headers)})
        if self.path.startswith("/svc/drop"):
            self.close_connection = True  # read the request, then hang up without an answer
            return
        if self.path.startswith("/svc/slow"):
            time.sleep(1.0)
        out = json.dumps({"path": self.path, "bytes": len(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if self.path.startswith("/svc/close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _answer


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def client(server: ThreadingHTTPServer, timeout: float = 30.0) -> Http:
    return Http(f"http://127.0.0.1:{server.server_address[1]}/svc/", {"X-Who": "test"}, timeout)


def test_requests_share_one_connection_and_carry_headers(server: ThreadingHTTPServer) -> None:
    http = client(server)
    a = http.request("POST", "queries", json={"sql": "SELECT 1", "name": "户籍"})
    b = http.request("GET", "datasets", params={"authorization": "auth a&b"})
    http.close()
    assert a.status_code == 200 and a.json()["path"] == "/svc/queries"
    assert b.json()["path"] == "/svc/datasets?authorization=auth+a%26b"
    first, second = Recorder.seen
    assert first["port"] == second["port"]  # kept alive
    assert json.loads(first["body"]) == {"sql": "SELECT 1", "name": "户籍"}
    assert first["headers"]["X-Who"] == "test"
    assert first["headers"]["Content-Type"] == "application/json"


def test_an_idle_connection_is_replaced_before_use(server: ThreadingHTTPServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http, "IDLE_SECONDS", 0.05)
    http = client(server)
    http.request("GET", "one")
    time.sleep(0.2)
    http.request("GET", "two")
    http.close()
    assert Recorder.seen[0]["port"] != Recorder.seen[1]["port"]


def test_a_connection_the_server_closes_is_not_reused(server: ThreadingHTTPServer) -> None:
    http = client(server)
    assert http.request("GET", "close").status_code == 200
    assert http.request("GET", "after").status_code == 200
    http.close()
    assert Recorder.seen[0]["port"] != Recorder.seen[1]["port"]


def test_a_streamed_body_arrives_whole(server: ThreadingHTTPServer) -> None:
    chunks = [b"a" * 70_000, b"b" * 3, b"c" * 1_000_000]
    size = sum(map(len, chunks))
    http = client(server)
    r = http.request("POST", "upload", content=iter(chunks),
                     headers={"Content-Length": str(size),
                              "Content-Type": "application/octet-stream"})
    http.close()
    assert r.json()["bytes"] == size and Recorder.seen[0]["body"] == b"".join(chunks)


def test_a_lost_answer_is_an_error_and_the_request_is_not_sent_again(
        server: ThreadingHTTPServer) -> None:
    http = client(server)
    with pytest.raises(GatewayUnavailable, match="cannot reach the query gateway"):
        send(http, "query gateway", "POST", "drop", json={"sql": "SELECT 1"})
    assert [s["path"] for s in Recorder.seen] == ["/svc/drop"]  # once
    assert http.request("GET", "next").status_code == 200  # a new connection afterwards
    http.close()


def test_timeouts_and_unreachable_services_say_so(server: ThreadingHTTPServer) -> None:
    http = client(server, timeout=0.2)
    with pytest.raises(HttpError, match="timed out"):
        http.request("GET", "slow")
    http.close()
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(HttpError, match="ConnectionRefusedError"):
        Http(f"http://127.0.0.1:{port}/", {}, 5.0).request("GET", "x")


def test_only_http_urls() -> None:
    for bad in ("ftp://127.0.0.1/", "127.0.0.1:8030", "http:///path"):
        with pytest.raises(ValueError, match="not an http"):
            Http(bad, {}, 1.0)
