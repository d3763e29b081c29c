"""Who is calling: hub identity for the API (a hub token) and for browsers (hub OAuth).

The hub is the only identity provider. ``jupyterhub.services.auth.HubOAuth`` asks the hub's
``/user`` endpoint about a token (briefly cached) and exchanges OAuth codes for tokens. Two kinds
of caller, kept apart on purpose:

- the analyst client in a sandbox sends ``Authorization: token <JUPYTERHUB_API_TOKEN>``; the API
  accepts it only if the token carries the release scope (``custom:shuyu:release``). The API
  submits and reports status; it never serves a file or a package;
- a browser logs in through hub OAuth; the resulting token is kept in an HttpOnly cookie scoped
  to the service and must carry the hub's access scope for this service
  (``access:services!service=review``). Pages and downloads accept only that cookie and refuse
  any request with an ``Authorization`` header, so a sandbox's server token (which has no access
  scope for the service) can never download a package, even pasted into a cookie.

Forms carry a token derived from the session (HMAC of the cookie's hash with the service's
secret), checked on every POST. OAuth state (the page to return to and the PKCE verifier) is in
a short-lived signed cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from jupyterhub.services.auth import HubOAuth, check_scopes

from release_review.exceptions import (
    HubUnavailable,
    NotAuthenticated,
    PermissionDenied,
    ReleaseError,
)
from release_review.permissions import ReviewUser

SESSION_COOKIE = "shuyu-review-session"
STATE_COOKIE = "shuyu-review-oauth-state"
STATE_MAX_AGE = 600


class LoginRequired(ReleaseError):
    """A browser without a valid session: send it to the hub's login (OAuth)."""

    code = "login_required"
    status = 302

    def __init__(self, next_url: str):
        super().__init__("log in through the hub first")
        self.next_url = next_url


class HubIdentity:
    def __init__(self, auth: HubOAuth, release_scope: str, secret: bytes):
        self.auth = auth
        self.release_scope = release_scope
        self.secret = secret

    @classmethod
    def create(cls, config: Any) -> "HubIdentity":
        auth = HubOAuth(api_url=config.hub_api_url, api_token=config.api_token,
                        oauth_client_id=config.client_id, base_url=config.service_prefix,
                        oauth_redirect_uri=config.callback_url,
                        cache_max_age=config.auth_cache_seconds)
        secret = bytes.fromhex(config.cookie_secret) if config.cookie_secret else \
            secrets.token_bytes(32)
        return cls(auth, config.release_scope, secret)

    async def _model(self, token: str) -> dict[str, Any]:
        try:
            model = await self.auth.user_for_token(token, sync=False)
        except Exception:  # noqa: BLE001 - tornado errors: the hub could not answer
            raise HubUnavailable("cannot ask the hub who you are now; try again later") from None
        if not model:
            raise NotAuthenticated("the hub does not recognize this token (expired or revoked?)")
        if model.get("kind", "user") != "user":
            raise PermissionDenied(f"token belongs to {model.get('kind')} {model.get('name')!r}, "
                                   "not to a person")
        return model

    @staticmethod
    def _user(model: dict[str, Any], source: str | None) -> ReviewUser:
        groups = frozenset(g for g in model.get("groups") or [] if isinstance(g, str))
        return ReviewUser(str(model["name"]), groups, source)

    async def api_user(self, header: str | None, source: str | None) -> ReviewUser:
        """The caller of an API route, from ``Authorization: token …``."""
        if not header:
            raise NotAuthenticated("no hub token: send 'Authorization: token "
                                   "<JUPYTERHUB_API_TOKEN>'")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            raise NotAuthenticated("the Authorization header must be 'token <hub token>'")
        model = await self._model(token.strip())
        if not check_scopes({self.release_scope}, set(model.get("scopes") or [])):
            raise PermissionDenied(f"{model['name']}'s token lacks the hub scope "
                                   f"{self.release_scope!r} that submitting releases requires "
                                   "(is the user an analyst?)")
        return self._user(model, source)

    async def browser_user(self, cookie: str | None, header: str | None, next_url: str,
                           source: str | None) -> ReviewUser:
        """The person behind a browser session (the hub OAuth token in our cookie)."""
        if header:
            raise PermissionDenied("the review pages accept no API tokens: open them in a "
                                   "browser and log in through the hub")
        if not cookie:
            raise LoginRequired(next_url)
        try:
            model = await self._model(cookie)
        except NotAuthenticated:
            raise LoginRequired(next_url) from None
        if not self.auth.check_scopes(self.auth.access_scopes, model):
            raise PermissionDenied(f"{model['name']}'s session may not use the review service "
                                   "(the hub grants access:services!service=review to analysts "
                                   "and reviewers)")
        return self._user(model, source)

    # --- OAuth -----------------------------------------------------------------------------

    def login_redirect(self, next_url: str) -> tuple[str, str]:
        """(the hub's authorize URL, the signed state cookie value) for a login."""
        verifier, challenge, method = self.auth.generate_pkce_code_challenge()
        state = secrets.token_urlsafe(16)
        cookie = self._sign({"state": state, "next": next_url, "verifier": verifier,
                             "at": int(time.time())})
        url = self.auth.oauth_authorization_url + "?" + urlencode({
            "client_id": self.auth.oauth_client_id, "redirect_uri": self.auth.oauth_redirect_uri,
            "response_type": "code", "state": state, "code_challenge": challenge,
            "code_challenge_method": method})
        return url, cookie

    async def finish_login(self, code: str, state: str, cookie: str | None) -> tuple[str, str]:
        """(the session token, the page to return to) after the hub redirected back."""
        saved = self._unsign(cookie)
        if not saved or not hmac.compare_digest(str(saved.get("state")), state or "") or \
                time.time() - int(saved.get("at", 0)) > STATE_MAX_AGE:
            raise NotAuthenticated("the login's OAuth state does not match this browser; start "
                                   "again from the review service's page")
        try:
            token = await self.auth.token_for_code(code, code_verifier=saved["verifier"],
                                                   sync=False)
        except Exception:  # noqa: BLE001
            raise NotAuthenticated("the hub did not accept the login code; log in again") \
                from None
        return token, str(saved.get("next") or "")

    # --- signed values ---------------------------------------------------------------------

    def _sign(self, value: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
        mac = hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def _unsign(self, signed: str | None) -> dict[str, Any] | None:
        if not signed or "." not in signed:
            return None
        body, mac = signed.rsplit(".", 1)
        good = hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, good):
            return None
        try:
            return json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None

    def form_token(self, session: str) -> str:
        """The token every form of this session carries (checked on POST)."""
        digest = hashlib.sha256(session.encode()).digest()
        return hmac.new(self.secret, b"form:" + digest, hashlib.sha256).hexdigest()

    def check_form_token(self, session: str | None, given: str | None) -> None:
        if not session or not given or not hmac.compare_digest(self.form_token(session), given):
            raise PermissionDenied("the form is out of date or came from another site; reload "
                                   "the page and try again")
