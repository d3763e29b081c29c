"""Who is calling: the hub is the only identity provider (DESIGN.md "Components").

The analyst client presents the hub API token of its single-user server. The gateway asks the
hub ``GET <hub_api_url>/user`` with that token (the hub's "whoami", the same call
``jupyterhub.services.auth.HubAuth.user_for_token`` makes), and accepts the caller only if:

- the hub knows the token (else ``NotAuthenticated``);
- the token belongs to a user, not a service;
- the token's scopes include the gateway's required scope (``custom:shuyu:query`` by default),
  resolved with JupyterHub's own ``check_scopes`` (else ``MissingScope``).

Answers are cached for ``auth_cache_seconds`` under the token's sha256, so a burst of queries
costs one hub call; a token or scope revoked at the hub stops working within that time. Failures
are never cached, and an unreachable hub means no access (``HubUnavailable``), never a guess.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from jupyterhub.services.auth import check_scopes

from hub.gateway.exceptions import HubUnavailable, MissingScope, NotAuthenticated

CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class HubUser:
    """A caller the hub vouched for, as the gateway sees it."""

    name: str
    scopes: frozenset[str]
    token_id: str | None
    session_id: str | None
    groups: tuple[str, ...] = ()

    @property
    def session(self) -> str | None:
        """The sandbox session a query belongs to: the id of the server token it came with."""
        return self.token_id or self.session_id


def token_from_header(value: str | None) -> str:
    """The token in an ``Authorization: token …`` or ``Bearer …`` header."""
    if not value:
        raise NotAuthenticated(
            "no hub token: send 'Authorization: token <JUPYTERHUB_API_TOKEN>'"
        )
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        raise NotAuthenticated("the Authorization header must be 'token <hub token>'")
    return token.strip()


class HubIdentity:
    """Resolves hub tokens to users, with a short cache; thread-safe."""

    def __init__(
        self,
        api_url: str,
        required_scope: str,
        cache_seconds: float = 5.0,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
    ):
        self.user_url = api_url.rstrip("/") + "/user"
        self.required_scope = required_scope
        self.cache_seconds = cache_seconds
        self._client = client or httpx.Client(timeout=timeout, trust_env=False)
        self._cache: dict[str, tuple[float, HubUser]] = {}
        self._lock = threading.Lock()
        self.hub_calls = 0

    def close(self) -> None:
        self._client.close()

    def cached_user(self, token: str) -> HubUser | None:
        """The cached answer about `token` if it is still fresh; never asks the hub."""
        key = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        return None

    def user_for_token(self, token: str) -> HubUser:
        user = self.cached_user(token)
        if user is not None:
            return user
        key = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        now = time.monotonic()
        user = self._ask_hub(token)
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) >= CACHE_MAX_ENTRIES:
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                    if len(self._cache) >= CACHE_MAX_ENTRIES:
                        self._cache.clear()
                self._cache[key] = (now + self.cache_seconds, user)
        return user

    def forget(self) -> None:
        """Drop every cached answer (tests and key rotation)."""
        with self._lock:
            self._cache.clear()

    def _ask_hub(self, token: str) -> HubUser:
        self.hub_calls += 1
        try:
            r = self._client.get(self.user_url, headers={"Authorization": f"token {token}"})
        except httpx.HTTPError as e:
            raise HubUnavailable(
                f"cannot reach the hub to check the token ({type(e).__name__}); try again later"
            ) from None
        if r.status_code in (401, 403):
            raise NotAuthenticated("the hub does not recognize this token (expired or revoked?)")
        if r.status_code != 200:
            raise HubUnavailable(f"the hub answered {r.status_code} when asked about the token")
        try:
            model = r.json()
        except ValueError:
            raise HubUnavailable("the hub's answer about the token was not JSON") from None
        return self._user_from_model(model)

    def _user_from_model(self, model: Any) -> HubUser:
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            raise HubUnavailable("the hub's answer about the token has no user name")
        if model.get("kind", "user") != "user":
            raise MissingScope(
                f"token belongs to {model.get('kind')} {model['name']!r}: only analysts' tokens "
                "may query"
            )
        scopes = frozenset(s for s in model.get("scopes") or [] if isinstance(s, str))
        if not check_scopes({self.required_scope}, scopes):
            raise MissingScope(
                f"{model['name']}'s token lacks the hub scope {self.required_scope!r} that the "
                "gateway requires (is the user in the analysts group?)"
            )
        groups = tuple(g for g in model.get("groups") or [] if isinstance(g, str))
        token_id = model.get("token_id")
        session_id = model.get("session_id")
        return HubUser(
            name=model["name"], scopes=scopes,
            token_id=str(token_id) if token_id else None,
            session_id=str(session_id) if session_id else None,
            groups=groups,
        )
