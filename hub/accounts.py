"""Hub accounts made by the platform operator or the authority (sign-up is off).

An account is a JupyterHub user (in the hub database, so ``allow_existing_users`` lets it log
in), its groups (which give its role: analysts, reviewers, regulators, authority), and a
NativeAuthenticator password (bcrypt) marked authorized. ``ensure_account`` writes all three and
is idempotent: run again, it resets the password and adds missing group memberships (never
removes any). Write accounts while the hub is stopped: a running hub caches users and groups.

``python -m hub.accounts NAME GROUP[,GROUP] < password`` does the same from a shell (the
password is read from standard input, never from the command line).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

import bcrypt
from jupyterhub import orm
from nativeauthenticator.orm import UserInfo

ROLE_GROUPS = ("analysts", "reviewers", "regulators", "authority")
SEPARATED = {"analysts", "reviewers", "regulators"}  # DESIGN.md: one person, one of these


def hub_db_url(data_dir: Path) -> str:
    """The hub database under the data directory, as hub/jupyterhub_config.py places it."""
    return f"sqlite:///{(Path(data_dir) / 'hub' / 'jupyterhub.sqlite').resolve()}"


def _hash(password: str) -> bytes:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt())


def ensure_account(db_url: str, name: str, password: str, groups: Iterable[str]) -> None:
    groups = list(groups)
    unknown = [g for g in groups if g not in ROLE_GROUPS]
    if unknown:
        raise ValueError(f"unknown group(s) {', '.join(unknown)}; use {', '.join(ROLE_GROUPS)}")
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True,
                                                              mode=0o700)
    db = orm.new_session_factory(db_url)()
    try:
        UserInfo.__table__.create(db.get_bind(), checkfirst=True)
        user = orm.User.find(db, name)
        if user is None:
            user = orm.User(name=name)
            db.add(user)
        held = {g.name for g in user.groups} | set(groups)
        if len(held & SEPARATED) > 1:
            raise ValueError(f"{name} would be in {', '.join(sorted(held & SEPARATED))}: one "
                             "person is never more than one of analyst, reviewer, regulator")
        for group_name in groups:
            group = orm.Group.find(db, group_name)
            if group is None:
                group = orm.Group(name=group_name)
                db.add(group)
            if group not in user.groups:
                user.groups.append(group)
        info = UserInfo.find(db, name)
        if info is None:
            db.add(UserInfo(username=name, password=_hash(password), is_authorized=True))
        elif not (info.is_authorized and bcrypt.checkpw(password.encode(), info.password)):
            info.password = _hash(password)
            info.is_authorized = True
        if db.dirty or db.new:  # an account that is already as asked is not written again
            db.commit()
    finally:
        db.close()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m hub.accounts NAME GROUP[,GROUP] < password "
              "(hub database: $SHUYU_DATA_DIR/hub)", file=sys.stderr)
        return 2
    from shuyu_server.settings import load_settings

    password = sys.stdin.readline().rstrip("\n")
    try:
        ensure_account(hub_db_url(load_settings().data_dir), argv[1], password,
                       [g for g in argv[2].split(",") if g])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
