"""TPF's bearer-token guard: one token per API family (TPF_WIRE §1.1).

`Authorization: Bearer <token>`; the `Bearer ` prefix is case-sensitive, the rest is trimmed
and compared in constant time. Missing header, other scheme, blank or wrong token → 401 with
an empty body and no `WWW-Authenticate`. The admin token also opens our `/v1/...`
control-plane routes (as the services let `admin` do everything), and the optional viewer
token opens every GET route outside `/tpf/` (reads only, the operator console's read-only
sign-in); on TPF's own paths each family accepts only its own token, as TPF does.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from tpf_gateway.problems import Problem, ProblemError
from tpf_gateway.routes import Family, Route

_PREFIX = "Bearer "


class Access(StrEnum):
    """What a token opens at the gateway: every route, the control plane's, or reads only."""

    ADMIN = "admin"
    CONTROL_PLANE = "control-plane"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class TokenGuard:
    """The configured token of each enabled family; `disabled` opens every route (dev only)."""

    tokens: Mapping[Family, str]
    disabled: bool = False
    # Opens every GET route outside /tpf/ and nothing else; None: no such token.
    viewer_token: str | None = None

    def check(self, route: Route, authorization: str | None) -> str | None:
        """The caller's token if `route` accepts it; raise ProblemError 401 otherwise.

        With the guard disabled every caller passes, and the token (if any) is still returned.
        """
        presented = _bearer(authorization)
        if self.disabled:
            return presented
        accepted = [self.tokens[route.family]] if route.family in self.tokens else []
        if not route.is_tpf and route.family is not Family.ADMIN and Family.ADMIN in self.tokens:
            accepted.append(self.tokens[Family.ADMIN])
        if not route.is_tpf and route.http_method == "GET" and self.viewer_token:
            accepted.append(self.viewer_token)
        if not _matches_any(presented, accepted):
            raise _unauthorized(presented)
        return presented

    def access(self, authorization: str | None) -> Access:
        """What the caller's token opens; raise ProblemError 401 for no or an unknown token.

        The services still authorize every call by the token's own grant; this is what the
        gateway lets through, which the console uses to decide which actions to offer.
        """
        presented = _bearer(authorization)
        if self.disabled:
            return Access.ADMIN
        candidates = (
            (Access.ADMIN, self.tokens.get(Family.ADMIN)),
            (Access.CONTROL_PLANE, self.tokens.get(Family.CONTROL_PLANE)),
            (Access.VIEWER, self.viewer_token),
        )
        # Every candidate is compared (no early exit); the widest match wins.
        found = [access for access, token in candidates if _matches_any(presented, [token])]
        if not found:
            raise _unauthorized(presented)
        return found[0]


def _matches_any(presented: str | None, accepted: list[str | None] | list[str]) -> bool:
    matched = False
    # Compare with every accepted token, without stopping early, so timing says nothing.
    for token in accepted:
        if (
            presented is not None
            and token is not None
            and hmac.compare_digest(token.encode(), presented.encode())
        ):
            matched = True
    return matched


def _unauthorized(presented: str | None) -> ProblemError:
    return ProblemError(
        Problem(
            status=401,
            message="Send 'Authorization: Bearer <token>' with this API family's token.",
            reason="TOKEN_MISSING" if presented is None else "TOKEN_INVALID",
            empty_tpf_body=True,
        )
    )


def _bearer(authorization: str | None) -> str | None:
    if authorization is None or not authorization.startswith(_PREFIX):
        return None
    token = authorization.removeprefix(_PREFIX).strip()
    return token or None
