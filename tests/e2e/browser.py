"""A user's browser, as plain HTTP: the hub's login form, spawning, and notebook kernels.

``Browser`` keeps cookies like a browser does and sends the XSRF header the hub and the Jupyter
server expect from their own pages. ``Kernel.run(code)`` runs code in a kernel of the user's
sandbox through the Jupyter kernel websocket protocol (JSON messages on
``/user/<name>/api/kernels/<id>/channels``), exactly as JupyterLab does, and returns what it
printed; ``run_json`` expects the code's last printed line to be JSON.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

READY_TIMEOUT = 180.0


class KernelError(AssertionError):
    """Code in the kernel raised; the message holds its traceback."""


class Browser:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, follow_redirects=True, timeout=60.0,
                                 trust_env=False)

    def close(self) -> None:
        self.http.close()

    def cookie(self, name: str, path_prefix: str) -> str | None:
        for c in self.http.cookies.jar:
            if c.name == name and (c.path or "/").startswith(path_prefix):
                return c.value
        return None

    def xsrf(self, path_prefix: str = "/hub/") -> dict[str, str]:
        token = self.cookie("_xsrf", path_prefix)
        return {"X-XSRFToken": token} if token else {}

    def login(self, user: str, password: str, next_url: str = "/hub/home") -> httpx.Response:
        """Fill in the hub's login form; the response is its answer (a redirect on success)."""
        page = self.http.get("/hub/login")
        page.raise_for_status()
        form = {"username": user, "password": password, "_xsrf": self.cookie("_xsrf", "/hub")}
        return self.http.post("/hub/login", data=form, params={"next": next_url},
                              follow_redirects=False)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The hub's REST API with the login cookie, as the hub's own pages call it."""
        return self.http.request(method, f"/hub/api/{path}", headers=self.xsrf("/hub"), **kw)

    def spawn(self, user: str, options: dict[str, Any] | None = None) -> httpx.Response:
        return self.api("POST", f"users/{user}/server", json=options or {})

    def wait_ready(self, user: str, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.api("GET", f"users/{user}")
            r.raise_for_status()
            server = (r.json().get("servers") or {}).get("")
            if server and server.get("ready"):
                return server
            if not server:
                raise AssertionError(f"{user}'s server is gone (start failed?)")
            time.sleep(0.5)
        raise AssertionError(f"{user}'s server was not ready within {timeout:.0f} s")

    def open_server(self, user: str) -> httpx.Response:
        """Open the sandbox (the OAuth hand-shake between server and hub runs on redirects)."""
        r = self.http.get(f"/user/{user}/lab")
        r.raise_for_status()
        return r

    def server_api(self, method: str, user: str, path: str, **kw: Any) -> httpx.Response:
        prefix = f"/user/{user}/"
        return self.http.request(method, f"{prefix}{path}", headers=self.xsrf(prefix), **kw)

    def start_kernel(self, user: str) -> "Kernel":
        r = self.server_api("POST", user, "api/kernels", json={"name": "python3"})
        r.raise_for_status()
        return Kernel(self, user, r.json()["id"])


@dataclass
class Kernel:
    browser: Browser
    user: str
    kernel_id: str

    def _ws_request(self) -> HTTPRequest:
        base = urlsplit(self.browser.base_url)
        prefix = f"/user/{self.user}/"
        xsrf = self.browser.cookie("_xsrf", prefix) or ""
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.browser.http.cookies.jar
                            if prefix.startswith(c.path or "/") and c.name != "_xsrf")
        url = (f"ws://{base.netloc}{prefix}api/kernels/{self.kernel_id}/channels"
               f"?session_id={uuid.uuid4().hex}")
        return HTTPRequest(url, headers={"Cookie": f"{cookies}; _xsrf={xsrf}",
                                         "X-XSRFToken": xsrf}, request_timeout=60)

    async def _run(self, code: str, timeout: float) -> tuple[str, dict[str, Any] | None]:
        ws = await websocket_connect(self._ws_request())
        msg_id = uuid.uuid4().hex
        ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": self.user, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        out: list[str] = []
        error = None
        idle = replied = False
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while not (idle and replied):
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise AssertionError(f"kernel did not finish within {timeout:.0f} s; "
                                         f"output so far: {''.join(out)[-2000:]}")
                raw = await asyncio.wait_for(ws.read_message(), left)
                if raw is None:
                    raise AssertionError("kernel websocket closed")
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    out.append(content["text"])
                elif kind == "error":
                    error = content
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True
        finally:
            ws.close()
            try:  # wait for the close handshake, so the socket is closed before the loop ends
                while await asyncio.wait_for(ws.read_message(), 10) is not None:
                    pass
            except asyncio.TimeoutError:
                pass
        return "".join(out), error

    def run(self, code: str, timeout: float = 120.0) -> str:
        out, error = asyncio.run(self._run(code, timeout))
        if error:
            raise KernelError(f"{error['ename']}: {error['evalue']}\n"
                              + "\n".join(error.get("traceback", []))[-3000:])
        return out

    def run_json(self, code: str, timeout: float = 120.0) -> Any:
        out = self.run(code, timeout)
        lines = [line for line in out.splitlines() if line.strip()]
        assert lines, "the kernel printed nothing"
        return json.loads(lines[-1])
