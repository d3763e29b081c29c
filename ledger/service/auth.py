"""JupyterHub OAuth for the console pages of a FastAPI service, and the regulator check.

The hub is the identity provider (DESIGN.md). A browser without a session is sent to the hub's
``/hub/api/oauth2/authorize`` (authorization-code flow with PKCE and a signed ``state``); the hub
redirects back to ``<prefix>/oauth_callback`` with a code, which the service exchanges for an
OAuth token with its own client secret (its hub API token). The token is kept in an HttpOnly,
SameSite=Lax cookie signed with a key derived from the service's API token, and each request
asks the hub who holds it (``GET /hub/api/user``; answers cached 30 s), so removing a person
from the regulators group takes effect within that time. A token must carry the scope that
grants access to this service (``access:services!service=<name>``) — JupyterHub only issues it
to users allowed to use the service.

The console pages use this, and so do the routes that serve entry content
(:mod:`ledger.service.access`); the checkpoint, hash tiles and proofs stay open to tools and
witnesses. Configuration comes from the variables the hub sets
for a managed service: ``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_CLIENT_ID``,
``JUPYTERHUB_OAUTH_CALLBACK_URL``, ``JUPYTERHUB_SERVICE_NAME``, ``JUPYTERHUB_BASE_URL`` and
``JUPYTERHUB_HOST``; ``SHUYU_CONSOLE_GROUP`` names the group allowed in (default ``regulators``).
Without them the console answers 503 with an explanation: it never guesses who is calling.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlencode, urlsplit

import httpx

SESSION_COOKIE = "shuyu-console-session"
STATE_COOKIE = "shuyu-console-oauth-state"
SESSION_MAX_AGE = 12 * 3600
STATE_MAX_AGE = 600
USER_CACHE_SECONDS = 30.0
DEFAULT_GROUP = "regulators"


class ConsoleAuthError(Exception):
    """Base of the errors the console turns into pages."""


class LoginRequired(ConsoleAuthError):
    """No valid session: the browser must go through the hub's OAuth (`next_url` after)."""

    def __init__(self, next_url: str):
        super().__init__("login required")
        self.next_url = next_url


class NotAllowed(ConsoleAuthError):
    """The hub knows the user, but the user may not use this console."""

    def __init__(self, user: str, group: str):
        super().__init__(f"{user} is not in the {group} group")
        self.user = user
        self.group = group


class AuthUnavailable(ConsoleAuthError):
    """The console cannot check identity now (no hub configured, or the hub did not answer)."""


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class HubOAuthConfig:
    api_url: str
    api_token: str
    client_id: str
    callback_url: str
    authorize_url: str
    service_name: str
    group: str = DEFAULT_GROUP
    secure_cookies: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "HubOAuthConfig | None":
        needed = ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_CLIENT_ID",
                  "JUPYTERHUB_SERVICE_NAME")
        if not all(env.get(k) for k in needed):
            return None
        base = env.get("JUPYTERHUB_BASE_URL") or "/"
        prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or f"{base}services/{env['JUPYTERHUB_SERVICE_NAME']}/"
        host = env.get("JUPYTERHUB_HOST", "")
        return cls(
            api_url=env["JUPYTERHUB_API_URL"].rstrip("/"),
            api_token=env["JUPYTERHUB_API_TOKEN"],
            client_id=env["JUPYTERHUB_CLIENT_ID"],
            callback_url=env.get("JUPYTERHUB_OAUTH_CALLBACK_URL") or prefix + "oauth_callback",
            authorize_url=f"{host}{base.rstrip('/')}/hub/api/oauth2/authorize",
            service_name=env["JUPYTERHUB_SERVICE_NAME"],
            group=env.get("SHUYU_CONSOLE_GROUP") or DEFAULT_GROUP,
            secure_cookies=host.startswith("https://") or env.get("SHUYU_SECURE_COOKIES") == "1",
        )

    @property
    def access_scopes(self) -> frozenset[str]:
        return frozenset({"access:services", f"access:services!service={self.service_name}"})


class Signer:
    """HMAC-SHA256 signed, timestamped cookie values (the key never leaves the process)."""

    def __init__(self, secret: str, purpose: str):
        self.key = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()

    def sign(self, value: str) -> str:
        body = base64.urlsafe_b64encode(f"{int(time.time())}|{value}".encode()).decode()
        mac = hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def unsign(self, signed: str | None, max_age: int) -> str | None:
        if not signed or "." not in signed or len(signed) > 8192:
            return None
        body, mac = signed.rsplit(".", 1)
        want = hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, want):
            return None
        try:
            stamp, value = base64.urlsafe_b64decode(body.encode()).decode().split("|", 1)
        except (ValueError, UnicodeDecodeError):
            return None
        if not stamp.isdigit() or time.time() - int(stamp) > max_age:
            return None
        return value


def safe_next(url: str | None, prefix: str) -> str:
    """A redirect target inside this service (never another host: no open redirect)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return prefix
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return prefix
    return url


class HubOAuth:
    """The OAuth client of one hub service, with a short cache of who holds which token."""

    def __init__(self, config: HubOAuthConfig, client: httpx.AsyncClient | None = None):
        self.config = config
        self.sessions = Signer(config.api_token, "console-session")
        self.states = Signer(config.api_token, "console-oauth-state")
        self.csrf = Signer(config.api_token, "console-csrf")
        self._client = client
        self._cache: dict[str, tuple[float, ConsoleUser]] = {}
        self._lock = threading.Lock()

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0, trust_env=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- the authorization-code flow -----------------------------------------------------

    def start_login(self, next_url: str) -> tuple[str, str]:
        """(URL of the hub's authorize page, signed state cookie value)."""
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = {
            "client_id": self.config.client_id,
            "redirect_uri": self.config.callback_url,
            "response_type": "code",
            "state": state,
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
        cookie = self.states.sign(f"{state}|{verifier}|{next_url}")
        return f"{self.config.authorize_url}?{urlencode(params)}", cookie

    async def finish_login(self, code: str, state: str, cookie: str | None) -> tuple[str, str]:
        """Check the state, exchange the code; return (session cookie value, next URL)."""
        saved = self.states.unsign(cookie, STATE_MAX_AGE)
        if saved is None:
            raise LoginRequired("")
        want, verifier, next_url = saved.split("|", 2)
        if not hmac.compare_digest(want, state or ""):
            raise LoginRequired(next_url)
        try:
            r = await self.client().post(
                f"{self.config.api_url}/oauth2/token",
                data={"client_id": self.config.client_id, "client_secret": self.config.api_token,
                      "grant_type": "authorization_code", "code": code,
                      "redirect_uri": self.config.callback_url, "code_verifier": verifier},
            )
        except httpx.HTTPError as e:
            raise AuthUnavailable(f"cannot reach the hub to finish the login ({type(e).__name__})")
        if r.status_code != 200:
            raise LoginRequired(next_url)
        token = r.json().get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthUnavailable("the hub's token answer had no access token")
        return self.sessions.sign(token), next_url

    # --- who is calling --------------------------------------------------------------------

    def token_of(self, cookie: str | None) -> str | None:
        return self.sessions.unsign(cookie, SESSION_MAX_AGE)

    async def user_for_token(self, token: str) -> ConsoleUser | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > now:
                return hit[1]
        try:
            r = await self.client().get(f"{self.config.api_url}/user",
                                        headers={"Authorization": f"token {token}"})
        except httpx.HTTPError as e:
            raise AuthUnavailable(f"cannot reach the hub to check the session ({type(e).__name__})")
        if r.status_code in (401, 403, 404):
            return None
        if r.status_code != 200:
            raise AuthUnavailable(f"the hub answered {r.status_code} about the session")
        model: Any = r.json()
        if not isinstance(model, dict) or model.get("kind", "user") != "user":
            return None
        scopes = set(model.get("scopes") or [])
        if not scopes & self.config.access_scopes:
            return None
        user = ConsoleUser(str(model.get("name")), tuple(model.get("groups") or ()))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + USER_CACHE_SECONDS, user)
        return user

    def csrf_token(self, session_cookie: str) -> str:
        return hmac.new(self.csrf.key, session_cookie.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session_cookie: str | None, token: str | None) -> bool:
        if not session_cookie or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session_cookie), token)
