"""Who may do what in the catalog: roles per action, in check/bool pairs.

``check_actor_can(actor, action)`` raises ``PermissionDenied`` with a readable reason;
``actor_can(actor, action)`` returns a bool for menus and buttons. Status changes of
authorizations and data requests take their roles from the transition tables in ``states.py``;
the actions below are the ones that are not status changes.

Separation of duties (DESIGN.md "Who uses it"): a registered analyst never acts in another role,
so an analyst cannot approve their own data request or change their own agreement.
"""

from __future__ import annotations

from enum import StrEnum

from hub.catalog.enums import Role
from hub.catalog.events import Actor
from hub.catalog.exceptions import PermissionDenied


class Action(StrEnum):
    REGISTER_DATASET = "register a dataset"
    RECORD_CONSENT = "record a data provider's consent"
    CREATE_OPERATOR = "create an operator"
    ADD_ANALYST = "add an analyst"
    CREATE_AUTHORIZATION = "create an authorization"
    CHANGE_SCOPE = "change an authorization's scope"
    CHANGE_ANALYSTS = "change an authorization's analysts"
    EXTEND_AUTHORIZATION = "extend an authorization"
    CREATE_DATA_REQUEST = "request data outside an authorization's scope"


ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.REGISTER_DATASET: frozenset({Role.AUTHORITY}),
    Action.RECORD_CONSENT: frozenset({Role.AUTHORITY}),
    Action.CREATE_OPERATOR: frozenset({Role.AUTHORITY}),
    Action.ADD_ANALYST: frozenset({Role.AUTHORITY}),
    Action.CREATE_AUTHORIZATION: frozenset({Role.AUTHORITY}),
    Action.CHANGE_SCOPE: frozenset({Role.AUTHORITY}),
    Action.CHANGE_ANALYSTS: frozenset({Role.AUTHORITY}),
    Action.EXTEND_AUTHORIZATION: frozenset({Role.AUTHORITY}),
    Action.CREATE_DATA_REQUEST: frozenset({Role.ANALYST}),
}


def check_actor_can(actor: Actor, action: Action) -> None:
    allowed = ACTION_ROLES[action]
    if actor.role not in allowed:
        who = ", ".join(sorted(str(r) for r in allowed))
        raise PermissionDenied(
            f"{actor.name} acts as {actor.role} and may not {action} (allowed: {who})"
        )


def actor_can(actor: Actor, action: Action) -> bool:
    try:
        check_actor_can(actor, action)
    except PermissionDenied:
        return False
    return True


def check_role_separation(actor: Actor, is_registered_analyst: bool) -> None:
    """A registered analyst may act only as an analyst."""
    if is_registered_analyst and actor.role is not Role.ANALYST:
        raise PermissionDenied(
            f"{actor.name} is a registered analyst and may not act as {actor.role} "
            "(separation of duties)"
        )
