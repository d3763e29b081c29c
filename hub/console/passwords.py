"""Temporary passwords of new analyst accounts, in NativeAuthenticator's table of the hub DB.

The hub's REST API makes users and group memberships but has no call for a NativeAuthenticator
password (its pages take browser sessions only), so the console writes the ``users_info`` row
itself: the bcrypt hash and ``is_authorized`` (the approval NativeAuthenticator would otherwise
ask an admin for). NativeAuthenticator reads that row at each login, so the account works at
once. An existing row is never overwritten: a running hub may hold it in its session, and a
reset is the hub's own change-password page. The password itself is returned once, to be
shown once; it is not stored anywhere else and never logged.
"""

from __future__ import annotations

import secrets
import string
from pathlib import Path

import bcrypt
from nativeauthenticator.orm import UserInfo
from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hub.console.errors import HubRefused, HubUnavailable

ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 16  # NativeAuthenticator here requires at least 12 (hub/jupyterhub_config.py)


def temporary_password() -> str:
    """16 random letters and digits (about 95 bits), with at least one of each kind."""
    while True:
        pw = "".join(secrets.choice(ALPHABET) for _ in range(PASSWORD_LENGTH))
        if any(c.isdigit() for c in pw) and any(c.isupper() for c in pw) and any(
                c.islower() for c in pw):
            return pw


class NativePasswords:
    def __init__(self, hub_db_url: str):
        self.url = hub_db_url
        if hub_db_url.startswith("sqlite:///"):
            path = Path(hub_db_url.removeprefix("sqlite:///"))
            self._exists = path.is_file
        else:
            self._exists = lambda: True
        self._engine = None

    def _bind(self):
        if self._engine is None:
            if not self._exists():
                raise HubUnavailable(f"the hub's database {self.url} does not exist (is the "
                                     "hub set up on this data directory?)")
            self._engine = create_engine(self.url, connect_args={"timeout": 30}
                                         if self.url.startswith("sqlite") else {})
            UserInfo.__table__.create(self._engine, checkfirst=True)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def has_password(self, user: str) -> bool:
        try:
            with Session(self._bind()) as s:
                return s.scalar(select(UserInfo).where(UserInfo.username == user)) is not None
        except SQLAlchemyError as e:
            raise HubUnavailable(f"cannot read the hub's password table: {_line(e)}") from None

    def set_initial_password(self, user: str) -> str:
        """Create the authorized NativeAuthenticator record with a new temporary password."""
        password = temporary_password()
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        try:
            with Session(self._bind()) as s, s.begin():
                if s.scalar(select(UserInfo).where(UserInfo.username == user)) is not None:
                    raise HubRefused(
                        f"{user} already has a password at the hub; it is not replaced here "
                        "(a hub admin can set a new one at /hub/change-password/" + user + ")")
                s.add(UserInfo(username=user, password=hashed, is_authorized=True))
        except SQLAlchemyError as e:
            raise HubUnavailable(f"cannot write the hub's password table: {_line(e)}") from None
        return password


def _line(e: Exception) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__
