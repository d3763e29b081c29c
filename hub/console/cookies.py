"""Signed cookie values and the per-session anti-forgery token of the console's forms.

A signed value is ``<base64url(payload)>.<base64url(HMAC-SHA256(key, name|payload))>``: the
cookie's name is part of what is signed, so a value cannot be moved from one cookie to another.
``unsign`` gives None for anything that does not verify (tampered, truncated, another key).

Forms carry ``_csrf`` = HMAC(key, "csrf|" + session token): bound to the session, never stored,
checked on every POST (``deps.checked_form``). Session cookies are also ``SameSite=Lax``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_key(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"shuyu-console|{purpose}|{secret}".encode()).digest()


def sign(key: bytes, name: str, payload: str) -> str:
    body = _b64(payload.encode())
    mac = hmac.new(key, f"{name}|{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(key: bytes, name: str, value: str | None) -> str | None:
    if not value or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    expected = _b64(hmac.new(key, f"{name}|{body}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        return _unb64(body).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def csrf_token(key: bytes, session_token: str) -> str:
    return _b64(hmac.new(key, f"csrf|{session_token}".encode(), hashlib.sha256).digest())


def csrf_ok(key: bytes, session_token: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(key, session_token), presented)
