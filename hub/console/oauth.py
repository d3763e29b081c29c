"""Hub OAuth for the console: who is at the browser, asked of the hub on every request.

The flow is JupyterHub's own (what ``jupyterhub.services.auth.HubOAuth`` and its
``HubOAuthCallbackHandler`` do for Tornado services), for FastAPI:

1. a page is asked for without a valid session: the console stores a random ``state`` and the
   page's path in a signed cookie and redirects to ``<hub>/hub/api/oauth2/authorize`` with its
   client id and redirect URI. The hub logs the person in and grants the console access only
   if a role gives them ``access:services!service=console`` (the authority group);
2. the hub redirects to ``<prefix>oauth_callback?code=…&state=…``; the console checks the state
   against its cookie and exchanges the code at ``<hub api>/oauth2/token`` (client id and the
   console's API token as secret) for an access token;
3. the token is kept in a signed, HttpOnly, SameSite=Lax cookie scoped to the console's prefix;
   on every request the console asks ``<hub api>/user`` who the token belongs to (answers
   cached for ``auth_cache_seconds``) and whether they are in the authority group. A token the
   hub no longer knows means logging in again; an unreachable hub means no access.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from hub.console.errors import HubUnavailable, LoginRequired

CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class HubUser:
    """A person the hub vouched for, as the console sees them."""

    name: str
    groups: tuple[str, ...]
    scopes: frozenset[str]
    token: str


class HubOAuth:
    """The OAuth client side of the console, and the per-request identity check."""

    def __init__(self, *, api_url: str, client_id: str, client_secret: str, redirect_uri: str,
                 authorize_url: str, cache_seconds: float = 5.0, timeout: float = 10.0,
                 client: httpx.Client | None = None):
        self.api_url = api_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self.authorize_endpoint = authorize_url
        self.cache_seconds = cache_seconds
        self._http = client or httpx.Client(timeout=timeout, trust_env=False)
        self._cache: dict[str, tuple[float, HubUser]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def new_state() -> str:
        return secrets.token_urlsafe(24)

    def authorize_url(self, state: str) -> str:
        query = urlencode({"client_id": self.client_id, "redirect_uri": self.redirect_uri,
                           "response_type": "code", "state": state})
        return f"{self.authorize_endpoint}?{query}"

    def exchange(self, code: str) -> str:
        """The access token for an authorization code (step 2 above)."""
        try:
            r = self._http.post(f"{self.api_url}/oauth2/token", data={
                "client_id": self.client_id, "client_secret": self._secret,
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": self.redirect_uri,
            })
        except httpx.HTTPError as e:
            raise HubUnavailable(f"cannot reach the hub to finish logging in "
                                 f"({type(e).__name__}); try again") from None
        if r.status_code in (400, 401, 403):
            raise LoginRequired("the hub did not accept the login code (expired or used "
                                "already); log in again")
        if r.status_code != 200:
            raise HubUnavailable(f"the hub answered {r.status_code} when finishing the login")
        token = _json(r).get("access_token")
        if not isinstance(token, str) or not token:
            raise HubUnavailable("the hub's answer to the login has no access token")
        return token

    def user_for_token(self, token: str) -> HubUser:
        key = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        user = self._ask_hub(token)
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) >= CACHE_MAX_ENTRIES:
                    self._cache.clear()
                self._cache[key] = (now + self.cache_seconds, user)
        return user

    def forget(self, token: str | None = None) -> None:
        with self._lock:
            if token is None:
                self._cache.clear()
            else:
                self._cache.pop(hashlib.sha256(token.encode()).hexdigest(), None)

    def _ask_hub(self, token: str) -> HubUser:
        try:
            r = self._http.get(f"{self.api_url}/user",
                               headers={"Authorization": f"token {token}"})
        except httpx.HTTPError as e:
            raise HubUnavailable(f"cannot reach the hub to check who is logged in "
                                 f"({type(e).__name__}); try again later") from None
        if r.status_code in (401, 403):
            raise LoginRequired("the hub no longer knows this login (expired or revoked)")
        if r.status_code != 200:
            raise HubUnavailable(f"the hub answered {r.status_code} when asked who is logged in")
        model = _json(r)
        if model.get("kind", "user") != "user" or not isinstance(model.get("name"), str):
            raise LoginRequired("the console is for people, not services; log in as a person")
        return HubUser(
            name=model["name"],
            groups=tuple(g for g in model.get("groups") or [] if isinstance(g, str)),
            scopes=frozenset(s for s in model.get("scopes") or [] if isinstance(s, str)),
            token=token,
        )


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        raise HubUnavailable("the hub's answer was not JSON") from None
    if not isinstance(data, dict):
        raise HubUnavailable("the hub's answer was not a JSON object")
    return data
