"""Principal role and tenant checks, and how the auth interceptor finds the principal."""

import pytest

from tpf_config import TokenGrant
from tpf_errors import ErrorKind, InvalidArgument, PermissionDenied, TpfError
from tpf_rpc.auth import (
    ROLE_ADMIN,
    ROLE_CONTROL_PLANE,
    ROLE_WORKER,
    Principal,
    authorize,
    current_principal,
    principal_scope,
)
from tpf_rpc.interceptors import AuthInterceptor

WORKER_A = Principal("w", frozenset({ROLE_WORKER}), frozenset({"tenant-a"}))
ADMIN_A = Principal("a", frozenset({ROLE_ADMIN}), frozenset({"tenant-a"}))

GRANTS = [
    TokenGrant("ops", frozenset({ROLE_ADMIN}), frozenset({"*"}), "ops-secret"),
    TokenGrant("w1", frozenset({ROLE_WORKER}), frozenset({"tenant-a"}), "w1-secret"),
]


def test_require_role_passes_for_a_held_role() -> None:
    WORKER_A.require_role(ROLE_WORKER)


def test_require_role_denies_a_missing_role_naming_it() -> None:
    with pytest.raises(PermissionDenied) as raised:
        WORKER_A.require_role(ROLE_CONTROL_PLANE)
    assert raised.value.reason == "ROLE_REQUIRED"
    assert raised.value.metadata == {"requiredRole": ROLE_CONTROL_PLANE}


@pytest.mark.parametrize("role", [ROLE_ADMIN, ROLE_CONTROL_PLANE, ROLE_WORKER])
def test_admin_implies_every_role(role: str) -> None:
    ADMIN_A.require_role(role)


def test_admin_role_does_not_widen_tenant_scope() -> None:
    with pytest.raises(PermissionDenied) as raised:
        ADMIN_A.require_tenant("tenant-b")
    assert raised.value.reason == "TENANT_NOT_IN_SCOPE"
    assert raised.value.metadata == {"tenantId": "tenant-b"}


def test_tenant_in_scope_passes_and_others_are_denied() -> None:
    WORKER_A.require_tenant("tenant-a")
    with pytest.raises(PermissionDenied):
        WORKER_A.require_tenant("tenant-b")


def test_wildcard_tenant_scope_covers_every_tenant() -> None:
    everyone = Principal("x", frozenset({ROLE_WORKER}), frozenset({"*"}))
    everyone.require_tenant("tenant-z")
    assert everyone.is_tenant_in_scope("anything")


def test_anonymous_admin_may_do_everything() -> None:
    anonymous = Principal.anonymous_admin()
    for role in (ROLE_ADMIN, ROLE_CONTROL_PLANE, ROLE_WORKER):
        anonymous.require_role(role)
    anonymous.require_tenant("tenant-q")


def test_current_principal_is_set_only_inside_its_scope() -> None:
    with pytest.raises(LookupError, match="AuthInterceptor"):
        current_principal()
    with principal_scope(WORKER_A):
        assert current_principal() is WORKER_A
        with principal_scope(ADMIN_A):
            assert current_principal() is ADMIN_A
        assert current_principal() is WORKER_A
    with pytest.raises(LookupError):
        current_principal()


def _reason_for(interceptor: AuthInterceptor, metadata: tuple[tuple[str, str], ...]) -> str:
    with pytest.raises(TpfError) as raised:
        interceptor.principal_for(metadata)
    assert raised.value.kind is ErrorKind.UNAUTHENTICATED
    return raised.value.reason


def test_interceptor_maps_a_known_bearer_token_to_its_principal() -> None:
    interceptor = AuthInterceptor(GRANTS)
    principal = interceptor.principal_for((("authorization", "Bearer w1-secret"),))
    assert principal == Principal("w1", frozenset({ROLE_WORKER}), frozenset({"tenant-a"}))
    assert interceptor.principal_for((("authorization", "bearer ops-secret"),)).subject == "ops"


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "TOKEN_MISSING"),
        ((("x-other", "Bearer ops-secret"),), "TOKEN_MISSING"),
        ((("authorization", "Bearer nope"),), "TOKEN_INVALID"),
        ((("authorization", "Bearer ops-secre"),), "TOKEN_INVALID"),
        ((("authorization", "Basic ops-secret"),), "TOKEN_INVALID"),
        ((("authorization", "Bearer "),), "TOKEN_INVALID"),
        ((("authorization", "ops-secret"),), "TOKEN_INVALID"),
    ],
)
def test_interceptor_refuses_missing_and_unknown_tokens(
    metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    assert _reason_for(AuthInterceptor(GRANTS), metadata) == reason


def test_interceptor_with_auth_disabled_makes_everyone_anonymous_admin() -> None:
    interceptor = AuthInterceptor([], auth_disabled=True)
    assert interceptor.principal_for(()) == Principal.anonymous_admin()


def test_interceptor_without_grants_refuses_everyone() -> None:
    assert _reason_for(AuthInterceptor([]), (("authorization", "Bearer x"),)) == "TOKEN_INVALID"


def test_require_any_role_passes_for_one_held_role_and_names_the_first_otherwise() -> None:
    WORKER_A.require_any_role((ROLE_CONTROL_PLANE, ROLE_WORKER))
    with pytest.raises(PermissionDenied) as raised:
        WORKER_A.require_any_role((ROLE_CONTROL_PLANE, ROLE_ADMIN))
    assert raised.value.metadata == {"requiredRole": ROLE_CONTROL_PLANE}


def test_authorize_checks_the_tenant_field_then_role_then_scope() -> None:
    with principal_scope(WORKER_A):
        with pytest.raises(InvalidArgument):
            authorize(" ", (ROLE_WORKER,))
        with pytest.raises(PermissionDenied) as role:
            authorize("tenant-b", (ROLE_CONTROL_PLANE,))
        assert role.value.reason == "ROLE_REQUIRED"
        with pytest.raises(PermissionDenied) as scope:
            authorize("tenant-b", (ROLE_WORKER,))
        assert scope.value.reason == "TENANT_NOT_IN_SCOPE"
        assert authorize(" tenant-a ", (ROLE_WORKER,)) == (WORKER_A, "tenant-a")
