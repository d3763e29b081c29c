"""The hub's authenticator: NativeAuthenticator, with its login page made to work on JupyterHub 6.

NativeAuthenticator 1.3.0 (the newest release) replaces the hub's ``/login`` handler with its
own, which times each login with ``self.statsd`` and renders with ``_render(login_error,
username)``. JupyterHub 6 removed the statsd client from its handlers and calls
``_render(..., sync=True)`` when it renders an error page, so every POST to ``/hub/login``
failed with a 500 (``'LoginHandler' object has no attribute 'statsd'``).
:class:`ShuyuAuthenticator` serves the same page, the same checks and the same messages, with
a handler that has neither problem. Everything else (bcrypt passwords, lockout after failed
logins, common-password refusal, optional TOTP, the authorize and change-password pages) is
NativeAuthenticator's own.
"""

from __future__ import annotations

from typing import Any

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator import handlers as native
from tornado.httputil import url_concat
from tornado.escape import url_escape


class _NoTimer:
    def start(self) -> "_NoTimer":
        return self

    def stop(self, send: bool = True) -> None:
        return None


class _NoStatsd:
    """Stands in for the statsd client JupyterHub 6 no longer gives its handlers."""

    def timer(self, name: str) -> _NoTimer:
        return _NoTimer()

    def incr(self, *args: Any, **kwargs: Any) -> None:
        return None


class LoginHandler(native.LoginHandler):
    """NativeAuthenticator's login page and messages, callable the way JupyterHub 6 calls it."""

    statsd = _NoStatsd()

    def _render(self, login_error: str | None = None, username: str | None = None,
                sync: bool = False, **kwargs: Any) -> Any:
        page = {
            "next": url_escape(self.get_argument("next", default="")),
            "username": username,
            "login_error": login_error,
            "custom_html": self.authenticator.custom_html,
            "login_url": self.settings["login_url"],
            "enable_signup": self.authenticator.enable_signup,
            "two_factor_auth": self.authenticator.allow_2fa,
            "authenticator_login_url": url_concat(
                self.authenticator.login_url(self.hub.base_url),
                {"next": self.get_argument("next", "")},
            ),
        }
        # an error page's namespace (status, message…) may come along; the page's own wins
        return self.render_template("native-login.html", sync=sync, **{**kwargs, **page})


class ShuyuAuthenticator(NativeAuthenticator):
    """NativeAuthenticator with a login handler that works on JupyterHub 6."""

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [(path, LoginHandler if path == r"/login" else handler)
                for path, handler in super().get_handlers(app)]
