"""Who may read the log's entries through the service.

Entries name analysts, operators, authorizations, datasets and queries, so under the hub (the
service has hub OAuth configured) only members of the regulators group read them: with the
console's session cookie, or with their own hub API token (``Authorization: token …`` or
``Bearer …``, e.g. made on the hub's token page for ``shuyu ledger verify --url … --token``).
Everything that carries no entry content stays open to any client, so witnesses and mirrors of
the tree work without an account: the checkpoint, hash tiles, the log's key, signed
checkpoints and proofs (hashes only). A sandbox reaches the proxy, so this is what keeps one
operator's analysts from reading another's queries.

Run standalone (``shuyu ledger serve`` without the hub's variables) the service has no identity
to check and serves entries to whoever reaches it: an operator's choice to publish the log, on
an address the operator picks (127.0.0.1 by default).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ledger.service.auth import SESSION_COOKIE, AuthUnavailable, HubOAuth

NEEDS_REGULATOR = ("ledger entries are for regulators: send a regulator's hub token "
                   "(Authorization: token …) or log in to the console")


def _oauth(request: Request) -> HubOAuth | None:
    console = getattr(request.app.state, "console", None)
    return console.oauth if console is not None else None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: token X`` or ``Bearer X`` header."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not value.strip():
        return None
    return value.strip()


async def entry_reader(request: Request) -> str | None:
    """The regulator reading entries (None when the service runs without the hub)."""
    oauth = _oauth(request)
    if oauth is None:
        return None
    token = (bearer_token(request.headers.get("authorization"))
             or oauth.token_of(request.cookies.get(SESSION_COOKIE)))
    if not token:
        raise HTTPException(401, NEEDS_REGULATOR, headers={"WWW-Authenticate": "token"})
    try:
        user = await oauth.user_for_token(token)
    except AuthUnavailable as e:
        raise HTTPException(503, f"{e}; entries are not served without a checked identity")
    if user is None:
        raise HTTPException(401, "the hub does not know this token, or it does not grant access "
                            "to the ledger service; " + NEEDS_REGULATOR,
                            headers={"WWW-Authenticate": "token"})
    if oauth.config.group not in user.groups:
        raise HTTPException(403, f"{user.name} is not in the {oauth.config.group} group; "
                            "ledger entries are for regulators")
    return user.name


EntryReaderDep = Annotated[str | None, Depends(entry_reader)]
