"""Roles and bearer tokens. The agent enforces them; the GUI only reflects them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from edge_agent.site import ROLES, SiteFolder
from genba.errors import AuthenticationError, KeyFileError, PermissionDeniedError

#: What each role may do. Integration (the MES/PLC bridge) only asks for predictions.
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "predict": frozenset({"integration", "operator", "supervisor"}),
    "label": frozenset({"operator", "supervisor"}),
    "explain": frozenset({"operator", "supervisor"}),
    "queue": frozenset({"operator", "supervisor"}),
    "read": frozenset({"operator", "supervisor"}),
    "manage": frozenset({"supervisor"}),
}


class TokenRegistry:
    """Maps a presented bearer token to its role, comparing digests in constant time."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._digests = {role: _digest(token) for role, token in tokens.items() if token}

    @classmethod
    def from_site(cls, site: SiteFolder) -> TokenRegistry:
        tokens = {}
        for role in ROLES:
            try:
                tokens[role] = site.read_token(role)
            except KeyFileError:
                continue  # a role without a token file simply cannot sign in
        return cls(tokens)

    def role_for(self, authorization: str | None) -> str:
        if not authorization:
            raise AuthenticationError("missing token: send 'Authorization: Bearer TOKEN' with a role's token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("malformed Authorization header: expected 'Bearer TOKEN'")
        presented = _digest(token.strip())
        role = None
        for name, digest in self._digests.items():
            if hmac.compare_digest(presented, digest):
                role = name
        if role is None:
            raise AuthenticationError("invalid token for this site")
        return role


#: What each permission lets a role do, in the words an error message uses.
DOING = {
    "predict": "ask for predictions",
    "label": "label items",
    "explain": "ask why the model answered as it did (explanations)",
    "queue": "read the labelling queue",
    "read": "read status, models, KPIs or logs",
    "manage": "manage models (install, promote, roll back, train)",
}


def authorize(role: str, permission: str) -> str:
    if role not in PERMISSIONS[permission]:
        allowed = " or ".join(sorted(PERMISSIONS[permission]))
        raise PermissionDeniedError(f"the {role} role may not {DOING[permission]}; use a {allowed} token")
    return role


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
