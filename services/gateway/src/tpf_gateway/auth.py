"""TPF's bearer-token guard: one token per API family (TPF_WIRE §1.1).

`Authorization: Bearer <token>`; the `Bearer ` prefix is case-sensitive, the rest is trimmed
and compared in constant time. Missing header, other scheme, blank or wrong token → 401 with
an empty body and no `WWW-Authenticate`. The admin token also opens our `/v1/...`
control-plane routes (as the services let `admin` do everything); on TPF's own paths each
family accepts only its own token, as TPF does.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from tpf_gateway.problems import Problem, ProblemError
from tpf_gateway.routes import Family, Route

_PREFIX = "Bearer "


@dataclass(frozen=True, slots=True)
class TokenGuard:
    """The configured token of each enabled family; `disabled` opens every route (dev only)."""

    tokens: Mapping[Family, str]
    disabled: bool = False

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
        matched = False
        # Compare with every accepted token, without stopping early, so timing says nothing.
        for token in accepted:
            if presented is not None and hmac.compare_digest(token.encode(), presented.encode()):
                matched = True
        if not matched:
            raise ProblemError(
                Problem(
                    status=401,
                    message="Send 'Authorization: Bearer <token>' with this API family's token.",
                    reason="TOKEN_MISSING" if presented is None else "TOKEN_INVALID",
                    empty_tpf_body=True,
                )
            )
        return presented


def _bearer(authorization: str | None) -> str | None:
    if authorization is None or not authorization.startswith(_PREFIX):
        return None
    token = authorization.removeprefix(_PREFIX).strip()
    return token or None
