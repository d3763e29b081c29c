"""From inside a running sandbox, every way out the server can close must fail.

Each test runs code in alice's notebook kernel (the analyst's own code, as untrusted as it
gets) or uses her browser session, and checks the attempt fails; where it helps, a control in
the same test shows the probe itself works (the allowed route answers, the target is up), so a
broken probe cannot pass for a closed door.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Analyst, System, login_and_spawn

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

NET = """
import json, os, socket, urllib.request, urllib.error
from urllib.parse import urlsplit
HUB = urlsplit(os.environ["JUPYTERHUB_API_URL"])
GATEWAY_HOST = HUB.hostname
TOKEN = os.environ["JUPYTERHUB_API_TOKEN"]
def tcp(host, port, timeout=4):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return "connected"
    except OSError as e:
        return f"{type(e).__name__}: {e}"
def http(url, method="GET", token=TOKEN, data=None):
    req = urllib.request.Request(url, method=method, data=data,
                                 headers={"Authorization": f"token {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError as e:
        return f"{type(e).__name__}: {e}"
SERVER = "http://127.0.0.1:8888" + os.environ["JUPYTERHUB_SERVICE_PREFIX"]
"""


def inside(analyst: Analyst, body: str) -> object:
    return analyst.kernel.run_json(NET + body)


# --- bulk downloads ----------------------------------------------------------------------


@pytest.mark.parametrize("route", [
    "files/Welcome.ipynb", "files/Welcome.ipynb?download=1",
    "nbconvert/html/Welcome.ipynb?download=true", "nbconvert/script/Welcome.ipynb",
    "view/Welcome.ipynb",
])
def test_download_routes_are_closed(alice: Analyst, route: str) -> None:
    browser = alice.browser.server_api("GET", "alice", route)
    assert browser.status_code in (403, 404), (route, browser.status_code)
    from_kernel = inside(alice, f"print(json.dumps([http(SERVER + {route!r}), "
                                f"http(SERVER + 'api/contents/Welcome.ipynb')]))")
    assert from_kernel[0] in (403, 404), (route, from_kernel)
    assert from_kernel[1] == 200  # control: the server and the token work


def test_nbconvert_api_is_closed(alice: Analyst) -> None:
    r = alice.browser.server_api("POST", "alice", "api/nbconvert/html",
                                 json={"cells": [], "metadata": {}, "nbformat": 4,
                                       "nbformat_minor": 5})
    assert r.status_code in (403, 404, 405), r.status_code


def test_terminal_cannot_be_opened(alice: Analyst) -> None:
    r = alice.browser.server_api("POST", "alice", "api/terminals")
    assert r.status_code in (403, 404), r.status_code
    assert alice.browser.server_api("GET", "alice", "terminals/1").status_code in (403, 404)
    from_kernel = inside(alice, "print(json.dumps(http(SERVER + 'api/terminals', 'POST', "
                                "data=b'{}')))")
    assert from_kernel in (403, 404), from_kernel


# --- the network ---------------------------------------------------------------------------


def test_host_listener_on_another_port_is_unreachable(system: System, alice: Analyst) -> None:
    port = system.listener.port
    result = inside(alice, f"print(json.dumps([tcp(GATEWAY_HOST, {port}), "
                           f"tcp(GATEWAY_HOST, {system.hub.ports.public})]))")
    assert result[0] != "connected", result
    assert not [c for c in system.listener.connections
                if c[0].startswith(system.net.gateway.rsplit(".", 2)[0])]
    assert result[1] == "connected"  # control: the proxy port is allowed
    # and the listener itself is up: the host reaches it
    import socket

    socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_other_host_services_are_unreachable(system: System, alice: Analyst) -> None:
    p = system.hub.ports
    ports = [p.ledger, p.review, p.console, p.regulator, p.proxy_api, 22]
    probe = ports + [p.gateway]
    result = inside(alice, f"print(json.dumps([tcp(GATEWAY_HOST, p) for p in {probe}]))")
    assert all(r != "connected" for r in result[:-1]), dict(zip(ports, result))
    assert result[-1] == "connected"  # control: the query gateway's port is open to sandboxes


def test_the_gateway_port_serves_the_gateway_only(system: System, alice: Analyst) -> None:
    """The client calls the gateway at its own port; the port answers nothing else, and the
    ledger records the sandbox's own address, whatever X-Forwarded-For the caller claims."""
    gateway = f"http://{system.net.gateway}:{system.hub.ports.gateway}"
    result = inside(alice, f"""
import shuyu
df = shuyu.query("SELECT district, count(*) AS n FROM residents GROUP BY district")
forged = urllib.request.Request({gateway!r} + "/services/gateway/queries", method="POST",
    data=json.dumps({{"sql": "SELECT count(*) AS n FROM residents"}}).encode(),
    headers={{"Authorization": f"token {{TOKEN}}", "Content-Type": "application/json",
             "X-Forwarded-For": "10.99.99.99"}})
with urllib.request.urlopen(forged, timeout=30) as r:
    forged_id = json.load(r)["query_id"]
me = socket.gethostbyname(socket.gethostname())
print(json.dumps({{
    "url": os.environ["SHUYU_GATEWAY_URL"], "rows": len(df), "me": me,
    "query_id": shuyu.last_result().query_id, "forged_id": forged_id,
    "hub_through_gateway_port": http({gateway!r} + "/hub/api/user"),
    "ledger_through_gateway_port": http({gateway!r} + "/services/ledger/api/v1/entries"),
    "review_through_gateway_port": http({gateway!r} + "/services/review/api/requests"),
}}))
""")
    assert result["url"] == gateway + "/services/gateway/", result
    assert result["rows"] > 0
    for key in ("hub", "ledger", "review"):
        assert result[f"{key}_through_gateway_port"] == 404, result
    sources = {e["details"]["query_id"]: e["details"]["source"]
               for e in system.entries_of("query", actor="alice")}
    assert sources[result["query_id"]] == result["me"], sources  # the container's address
    assert sources[result["forged_id"]] == result["me"], sources  # not the claimed one


def test_container_on_another_network_is_unreachable(system: System, alice: Analyst) -> None:
    other = system.other
    result = inside(alice, f"print(json.dumps(tcp({other.ip!r}, {other.port})))")
    assert result != "connected", result
    r = httpx.get(f"http://{other.ip}:{other.port}/", timeout=10, trust_env=False)
    assert r.status_code == 200  # control: it serves, the host reaches it


def test_outside_names_do_not_resolve(system: System, alice: Analyst) -> None:
    names = [system.other.container, f"{system.other.container}.{system.other.net.name}"]
    result = inside(alice, f"""
out = {{}}
for name in {names!r}:
    try:
        out[name] = [a[4][0] for a in socket.getaddrinfo(name, 8080)]
    except OSError as e:
        out[name] = f"{{type(e).__name__}}: {{e}}"
print(json.dumps(out))
""")
    assert all(isinstance(v, str) for v in result.values()), result


def test_another_analysts_server_is_unreachable(system: System, alice: Analyst,
                                                carol: Analyst) -> None:
    import docker

    client = docker.from_env()
    carol_ip = client.containers.get(f"{system.net.name}-sandbox-carol").attrs[
        "NetworkSettings"]["Networks"][system.net.name]["IPAddress"]
    client.close()
    proxy = f"http://{system.net.gateway}:{system.hub.ports.public}"
    result = inside(alice, f"print(json.dumps([tcp({carol_ip!r}, 8888), "
                           f"http({proxy!r} + '/user/carol/api/status'), "
                           f"http({proxy!r} + '/user/alice/api/status')]))")
    assert result[0] != "connected", result
    assert result[1] in (302, 403, 404), result
    assert result[2] == 200, result  # control: her own server through the proxy
    # carol's server is up: her own browser reaches it
    assert carol.browser.server_api("GET", "carol", "api/status").status_code == 200


# --- the server token ----------------------------------------------------------------------


def test_server_token_cannot_list_users(alice: Analyst) -> None:
    result = inside(alice, """
api = os.environ["JUPYTERHUB_API_URL"].rstrip("/")
req = urllib.request.Request(api + "/user", headers={"Authorization": f"token {TOKEN}"})
me = json.load(urllib.request.urlopen(req, timeout=10))
print(json.dumps({"users": http(api + "/users"), "carol": http(api + "/users/carol"),
                  "groups": http(api + "/groups"), "me": me["name"], "scopes": me["scopes"],
                  "new_token": http(api + "/users/alice/tokens", "POST", data=b"{}"),
                  "start_server": http(api + "/users/alice/server", "POST", data=b"{}")}))
""")
    assert result["me"] == "alice"  # control: the token is valid
    assert result["users"] == 403 and result["carol"] in (403, 404)
    assert result["groups"] == 403
    assert result["new_token"] == 403 and result["start_server"] == 403
    assert not any(s.startswith(("list:", "admin", "tokens", "servers")) for s in result["scopes"])


def test_server_token_cannot_reach_the_ledgers_write_side(system: System,
                                                          alice: Analyst) -> None:
    proxy = f"http://{system.net.gateway}:{system.hub.ports.public}"
    result = inside(alice, f"""
print(json.dumps({{
    "ledger_port": tcp(GATEWAY_HOST, {system.hub.ports.ledger}),
    "ledger_service": http({proxy!r} + "/services/ledger/api/v1/entries", "POST", data=b"{{}}"),
    "read_entries": http({proxy!r} + "/services/ledger/api/v1/entries", token=None),
    "read_entries_with_token": http({proxy!r} + "/services/ledger/api/v1/entries"),
    "entry_tiles": http({proxy!r} + "/services/ledger/tile/entries/000.p/1"),
    "checkpoint": http({proxy!r} + "/services/ledger/checkpoint", token=None),
    "gateway_append": http({proxy!r} + "/services/gateway/ledger", "POST", data=b"{{}}"),
    "socket": os.path.exists("{system.world.settings.ledger_dir}/sequencer.sock"),
}}))
""")
    assert result["ledger_port"] != "connected", result
    assert result["ledger_service"] in (403, 404, 405), result
    # other analysts' queries are in the entries: the sandbox cannot read them, not even with
    # its own server's token; the checkpoint (size and root only) is open (the control)
    assert result["read_entries"] == 401, result
    assert result["read_entries_with_token"] == 401, result
    assert result["entry_tiles"] == 401, result
    assert result["checkpoint"] == 200, result
    assert result["gateway_append"] in (403, 404, 405), result
    assert result["socket"] is False
    # control: the ledger service and its sequencer socket are there, on the host
    assert (system.world.settings.ledger_dir / "sequencer.sock").exists()


# --- the filesystem ------------------------------------------------------------------------


def test_no_docker_socket_and_no_raw_data(system: System, alice: Analyst) -> None:
    data_dir = str(system.world.data_dir)
    result = inside(alice, f"""
found = []
for root, dirs, files in os.walk("/", onerror=lambda e: None):
    if root.startswith(("/proc", "/sys", "/dev")):
        dirs[:] = []
        continue
    for f in files + dirs:
        path = os.path.join(root, f)
        if f in ("domain.duckdb", "ledger.db", "control.db", "docker.sock", "ledger.skey"):
            found.append(path)
        elif f.endswith((".duckdb", ".parquet", ".skey", ".sock")) and not path.startswith(
                "/opt/shuyu/venv/"):  # the image's own packages ship test files (pyarrow)
            found.append(path)
mounts = open("/proc/self/mountinfo").read()
print(json.dumps({{"found": found, "data_dir_mounted": {data_dir!r} in mounts,
                   "docker_sock": [p for p in ("/var/run/docker.sock", "/run/docker.sock")
                                   if os.path.exists(p)],
                   "env": sorted(k for k in os.environ if k.startswith(("SHUYU_DATA", "DOCKER")))}}))
""")
    assert result == {"found": [], "data_dir_mounted": False, "docker_sock": [], "env": []}


def test_root_filesystem_is_read_only(alice: Analyst) -> None:
    result = inside(alice, """
out = {}
for path in ("/etc/shuyu-probe", "/opt/shuyu/venv/shuyu-probe", "/usr/local/bin/probe",
             "/opt/shuyu/lib/shuyu_sandbox/authorizer.py", "/etc/shuyu/jupyter/x.py"):
    try:
        with open(path, "a") as f:
            f.write("x")
        out[path] = "written"
    except OSError as e:
        out[path] = e.errno
with open(os.path.expanduser("~/work/probe.txt"), "w") as f:
    f.write("ok")
out["work"] = "written"
print(json.dumps(out))
""")
    assert result.pop("work") == "written"  # control: the work volume is writable
    assert all(v != "written" for v in result.values()), result


# --- the image -----------------------------------------------------------------------------


def test_another_image_cannot_be_started(system: System, alice: Analyst) -> None:
    from tests.e2e.browser import Browser
    from tests.e2e.conftest import PASSWORD

    browser = Browser(system.hub.public_url)
    try:
        assert browser.login("frank", PASSWORD).status_code == 302
        r = browser.spawn("frank", {"image": "busybox:latest"})
        assert r.status_code in (400, 403), r.text
        assert "not allowed" in r.text
        assert system.hub.server("frank") is None
        refused = system.entries_of("session.refused", actor="frank")
        assert refused and refused[-1]["details"]["code"] == "image"
        assert refused[-1]["details"]["image"] == "busybox:latest"
        # the refused choice is not kept for the next start
        with system.hub.admin() as admin:
            model = admin.get("users/frank", params={"include_stopped_servers": "1"}).json()
        assert not (model.get("servers") or {}).get("", {}).get("user_options")
    finally:
        browser.close()
    # alice's server token cannot start (or restart) a server at all, with any image
    result = inside(alice, "print(json.dumps(http(os.environ['JUPYTERHUB_API_URL'] + "
                           "'/users/alice/server', 'POST', data=b'{\"image\": \"busybox\"}')))")
    assert result == 403


# --- roles without data access -----------------------------------------------------------


@pytest.mark.parametrize("user", ["rita", "reg"])
def test_reviewer_and_regulator_get_no_data_access(system: System, user: str) -> None:
    from tests.e2e.browser import Browser
    from tests.e2e.conftest import PASSWORD

    browser = Browser(system.hub.public_url)
    try:
        assert browser.login(user, PASSWORD).status_code == 302
        r = browser.spawn(user)
        assert r.status_code == 403, r.text
        assert "Sandboxes are for analysts" in r.text
        assert system.hub.server(user) is None
        assert system.entries_of("session.refused", actor=user)[-1]["details"]["code"] == "role"
        token = browser.api("POST", f"users/{user}/tokens", json={"note": "probe"})
        assert token.status_code == 201, token.text
        r = httpx.get(f"{system.hub.public_url}/services/gateway/datasets", timeout=30,
                      trust_env=False,
                      headers={"Authorization": f"token {token.json()['token']}"})
        assert r.status_code == 403, r.text
        r = httpx.post(f"{system.hub.public_url}/services/gateway/queries", timeout=30,
                       trust_env=False, json={"sql": "SELECT count(*) FROM enterprises"},
                       headers={"Authorization": f"token {token.json()['token']}"})
        assert r.status_code == 403, r.text
    finally:
        browser.close()


def test_analyst_without_authorization_in_force_gets_no_sandbox(system: System) -> None:
    from tests.e2e.browser import Browser
    from tests.e2e.conftest import PASSWORD

    browser = Browser(system.hub.public_url)
    try:
        assert browser.login("dave", PASSWORD).status_code == 302
        r = browser.spawn("dave")
        assert r.status_code == 403, r.text
        assert "starts at" in r.text, r.text
        assert system.hub.server("dave") is None
        refused = system.entries_of("session.refused", actor="dave")
        assert refused[-1]["details"]["code"] == "authorization"
        assert not system.entries_of("session.open", actor="dave")
    finally:
        browser.close()


def test_login_with_a_wrong_password_fails(system: System) -> None:
    from tests.e2e.browser import Browser

    browser = Browser(system.hub.public_url)
    try:
        r = browser.login("alice", "not-her-password-at-all")
        assert r.status_code == 200 and "Invalid username or password" in r.text
        assert browser.api("GET", "users/alice").status_code == 403  # not logged in
    finally:
        browser.close()


def test_login_and_spawn_helper_reuses_a_running_server(system: System, alice: Analyst) -> None:
    again = login_and_spawn(system, "alice")
    try:
        assert again.kernel.run("print(6 * 7)").strip() == "42"
    finally:
        again.browser.close()


def test_server_token_is_refused_by_the_platforms_other_services(system: System,
                                                                 alice: Analyst) -> None:
    """The console, the regulator's actions and the ledger's console pages admit people
    through hub OAuth and their groups; a sandbox's token opens none of them: every redirect
    chain ends in a refusal or at the hub's login page."""
    proxy = f"http://{system.net.gateway}:{system.hub.ports.public}"
    result = inside(alice, f"""
def follow(url, method="GET"):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,
                                 headers={{"Authorization": f"token {{TOKEN}}"}})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return [r.status, r.url, r.read(2000).decode("utf-8", "replace")]
    except urllib.error.HTTPError as e:
        return [e.code, e.url, ""]
print(json.dumps({{
    "console": follow({proxy!r} + "/services/console/"),
    "regulator": follow({proxy!r} + "/services/regulator/suspend", "POST"),
    "ledger_console": follow({proxy!r} + "/services/ledger/console"),
    "gateway": follow({proxy!r} + "/services/gateway/datasets"),
}}))
""")
    assert result.pop("gateway")[0] == 200  # control: the one service the token is for
    for name, (code, url, _body) in result.items():
        refused = code in (401, 403, 404, 405) or "/hub/login" in url
        assert refused, (name, code, url)
