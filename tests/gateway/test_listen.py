"""Where the gateway listens and whom it records as the caller.

With sandboxes, the gateway listens at its port on the proxy's address as well (sandboxes call
it there, one hop shorter); the session hub of these tests gives it ``SANDBOX_IP``, a loopback
address of its own, besides the proxy's route. ``X-Forwarded-For`` counts only from the proxy.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from hub.gateway.config import GatewayConfig, load_gateway_config
from hub.service_config import ConfigError, caller_address, listening_socket
from tests.gateway.fixtures import SANDBOX_IP

SQL = "SELECT district, count(*) AS n FROM residents GROUP BY district ORDER BY district"


def config(**fields: str) -> GatewayConfig:
    return GatewayConfig(hub_api_url="http://127.0.0.1:8081/hub/api",
                         service_url="http://127.0.0.1:8030", **fields)


def test_connections_on_the_extra_sockets_send_without_delay() -> None:
    """Connections the server accepts on ``listening_socket`` sockets have Nagle's algorithm
    off, as on the sockets uvicorn makes itself (else each response waited ~40 ms for the
    client's delayed ACK)."""
    async def accept_one() -> int:
        sock = listening_socket(SANDBOX_IP, 0)
        seen: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted = writer.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        reader, writer = await asyncio.open_connection(SANDBOX_IP, sock.getsockname()[1])
        await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()
        return seen[0]

    assert asyncio.run(accept_one()) != 0


def test_binds_follow_the_sandbox_address() -> None:
    assert config().binds == [("127.0.0.1", 8030)]
    assert config(sandbox_ip="0.0.0.0").binds == [("0.0.0.0", 8030)]  # covers loopback too
    assert config(sandbox_ip="127.0.0.1").binds == [("127.0.0.1", 8030)]
    assert config(sandbox_ip="172.30.0.1").binds == [("127.0.0.1", 8030), ("172.30.0.1", 8030)]


@pytest.mark.parametrize("bad", ["not-an-address", "172.30.0.1:8030", "0.0.0.0/0"])
def test_a_bad_sandbox_address_is_refused_by_name(bad: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUYU_GATEWAY_SANDBOX_IP", bad)
    with pytest.raises(ConfigError, match="sandbox_ip"):
        load_gateway_config(hub_api_url="http://127.0.0.1:8081/hub/api")


@pytest.mark.parametrize("peer, header, recorded", [
    ("172.30.0.5", None, "172.30.0.5"),
    # a sandbox calling the gateway straight: its header is only its own claim
    ("172.30.0.5", "10.1.2.3", "172.30.0.5"),
    # from the proxy (loopback): the hop it appended, not what the caller wrote before it
    ("127.0.0.1", "10.1.2.3, 172.30.0.5", "172.30.0.5 (via 127.0.0.1)"),
    ("127.0.0.1", "172.30.0.5", "172.30.0.5 (via 127.0.0.1)"),
    ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
    ("::1", "172.30.0.5", "172.30.0.5 (via ::1)"),
    ("127.0.0.1", " , ", "127.0.0.1"),
    (None, "172.30.0.5", None),
])
def test_forwarded_for_counts_only_from_the_proxy(peer: str | None, header: str | None,
                                                  recorded: str | None) -> None:
    assert caller_address(peer, header) == recorded


def test_the_gateway_answers_the_same_at_both_addresses(hub, gateway, tokens, ledger) -> None:
    direct = f"http://{SANDBOX_IP}:{hub.gateway_port}/services/gateway/"
    headers = {"Authorization": f"token {tokens['alice']}"}
    with httpx.Client(base_url=direct, timeout=60.0, trust_env=False) as http:
        assert http.get("health").json() == {"status": "ok"}
        there = http.post("queries", json={"sql": SQL}, headers=headers)
        assert http.post("queries", json={"sql": SQL}).status_code == 401  # same checks
    assert there.status_code == 200, there.text
    here = gateway.query("alice", SQL)
    assert here.status_code == 200, here.text
    assert there.json()["result_sha256"] == here.json()["result_sha256"]
    entry = ledger.last("query", query_id=there.json()["query_id"])
    assert entry["actor"] == "alice" and entry["details"]["outcome"] == "ok"


def test_a_forged_forwarded_for_does_not_reach_the_ledger(gateway, tokens, ledger) -> None:
    forged = "10.99.99.99"  # a header value only: nothing is ever sent there
    r = gateway.http.post("queries", json={"sql": SQL}, headers={
        **gateway.headers("alice"), "X-Forwarded-For": forged})
    assert r.status_code == 200, r.text
    source = ledger.last("query", query_id=r.json()["query_id"])["details"]["source"]
    assert source == "127.0.0.1" and forged not in source  # the hop the proxy saw
