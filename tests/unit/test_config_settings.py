"""CommonSettings: environment parsing, validation messages, token grants and refusal."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tpf_config import (
    ROLE_ADMIN,
    ROLE_CONTROL_PLANE,
    ROLE_WORKER,
    CommonSettings,
    ConfigError,
    TokenGrant,
    load_settings,
)


@pytest.fixture(autouse=True)
def _no_tpf_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set exactly the variables they read; the developer's TPF_* must not leak in."""
    for name in list(os.environ):
        if name.startswith("TPF_"):
            monkeypatch.delenv(name)


def _spec(token: str, subject: str = "ops", **fields: Any) -> dict[str, Any]:
    return {
        "token": token,
        "subject": subject,
        "roles": fields.get("roles", [ROLE_ADMIN]),
        "tenants": fields.get("tenants", ["*"]),
    }


def _settings_with_tokens(*specs: dict[str, Any], **overrides: Any) -> CommonSettings:
    return CommonSettings(auth_tokens=json.dumps(list(specs)), **overrides)


def test_defaults_describe_the_embedded_setup() -> None:
    settings = CommonSettings()
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.data_dir == Path(".tpf")
    assert (settings.grpc_host, settings.grpc_port) == ("0.0.0.0", 0)
    assert (settings.log_level, settings.log_format) == ("INFO", "json")
    # Unset: OTEL_TRACES_EXPORTER decides (tpf_telemetry.configure_tracing).
    assert settings.otel_traces_exporter is None
    assert settings.auth_disabled is False
    assert settings.shutdown_grace_s == 10.0


def test_environment_variables_with_tpf_prefix_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPF_GRPC_PORT", "7443")
    monkeypatch.setenv("TPF_LOG_LEVEL", "debug")
    monkeypatch.setenv("TPF_LOG_FORMAT", "text")
    monkeypatch.setenv("TPF_DATABASE_URL", "postgresql://u:p@db/tpf")
    monkeypatch.setenv("TPF_AUTH_DISABLED", "true")
    monkeypatch.setenv("TPF_DB_POOL_MAX_SIZE", "20")
    settings = load_settings(CommonSettings)
    assert settings.grpc_port == 7443
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "text"
    assert settings.database_url == "postgresql://u:p@db/tpf"
    assert settings.auth_disabled is True
    assert settings.db_pool_max_size == 20


def test_a_service_subclass_overrides_the_port_default(monkeypatch: pytest.MonkeyPatch) -> None:
    class RegistrySettings(CommonSettings):
        grpc_port: int = 7401
        artifact_dir: Path = Path(".tpf/artifacts")

    assert load_settings(RegistrySettings).grpc_port == 7401
    monkeypatch.setenv("TPF_ARTIFACT_DIR", "/srv/artifacts")
    assert load_settings(RegistrySettings).artifact_dir == Path("/srv/artifacts")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TPF_GRPC_PORT", "not-a-port"),
        ("TPF_GRPC_PORT", "70000"),
        ("TPF_LOG_LEVEL", "LOUD"),
        ("TPF_LOG_FORMAT", "xml"),
        ("TPF_OTEL_TRACES_EXPORTER", "jaeger"),
        ("TPF_SHUTDOWN_GRACE_S", "-1"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings(CommonSettings)


def test_invalid_value_is_not_echoed_because_it_may_be_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TPF_DB_POOL_MIN_SIZE", "s3cr3t-value")
    with pytest.raises(ConfigError) as raised:
        load_settings(CommonSettings)
    assert "TPF_DB_POOL_MIN_SIZE" in str(raised.value)
    assert "s3cr3t-value" not in str(raised.value)


def test_pool_min_above_max_is_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPF_DB_POOL_MIN_SIZE", "5")
    monkeypatch.setenv("TPF_DB_POOL_MAX_SIZE", "2")
    with pytest.raises(ConfigError, match=r"TPF_DB_POOL_MIN_SIZE.*TPF_DB_POOL_MAX_SIZE"):
        load_settings(CommonSettings)


def test_literal_token_spec_parses_into_grants() -> None:
    settings = _settings_with_tokens(
        _spec("s-ops"),
        _spec("s-w", "worker-a", roles=[ROLE_WORKER], tenants=["tenant-a", "tenant-b"]),
    )
    assert settings.token_grants() == [
        TokenGrant("ops", frozenset({ROLE_ADMIN}), frozenset({"*"}), "s-ops"),
        TokenGrant(
            "worker-a", frozenset({ROLE_WORKER}), frozenset({"tenant-a", "tenant-b"}), "s-w"
        ),
    ]


def test_env_and_file_references_are_resolved(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPS_TOKEN", "from-env")
    secret_file = tmp_path / "cp-token"
    secret_file.write_text("from-file\n")
    settings = _settings_with_tokens(
        _spec("env:OPS_TOKEN"),
        _spec(f"file:{secret_file}", "cp", roles=[ROLE_CONTROL_PLANE]),
    )
    assert [g.secret for g in settings.token_grants()] == ["from-env", "from-file"]


def test_tokens_file_is_read_and_combined_with_the_variable(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(json.dumps([_spec("s-file", "from-file")]))
    settings = _settings_with_tokens(_spec("s-env", "from-env"), auth_tokens_file=tokens_file)
    assert [g.subject for g in settings.token_grants()] == ["from-env", "from-file"]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("env:TPF_TEST_UNSET_TOKEN", "TPF_TEST_UNSET_TOKEN"),
        ("file:/nonexistent/tpf-token", "/nonexistent/tpf-token"),
    ],
)
def test_unresolvable_reference_is_refused_naming_it(token: str, expected: str) -> None:
    settings = _settings_with_tokens(_spec(token, "ops"))
    with pytest.raises(ConfigError, match=expected) as raised:
        settings.token_grants()
    assert "TPF_AUTH_TOKENS" in str(raised.value)
    assert "'ops'" in str(raised.value)


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        _settings_with_tokens(_spec(f"file:{empty}")).token_grants()


@pytest.mark.parametrize(
    ("spec_json", "expected"),
    [
        ("not json", "TPF_AUTH_TOKENS"),
        (json.dumps({"token": "x"}), "TPF_AUTH_TOKENS"),
        (json.dumps([_spec("x", roles=["admn"])]), "unknown roles"),
        (json.dumps([_spec("x", roles=[])]), "roles"),
        (json.dumps([_spec("x", tenants=[])]), "tenants"),
        (json.dumps([{**_spec("x"), "tenant": "a"}]), "tenant"),
        (json.dumps([{"token": "x", "roles": ["admin"], "tenants": ["*"]}]), "subject"),
    ],
)
def test_malformed_spec_is_refused_with_the_variable_and_the_problem(
    spec_json: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as raised:
        CommonSettings(auth_tokens=spec_json).token_grants()
    assert "TPF_AUTH_TOKENS" in str(raised.value)


def test_spec_errors_never_echo_the_secret() -> None:
    spec = json.dumps([{**_spec("super-secret-value"), "roles": "admin"}])
    with pytest.raises(ConfigError) as raised:
        CommonSettings(auth_tokens=spec).token_grants()
    assert "super-secret-value" not in str(raised.value)


def test_two_grants_sharing_a_secret_are_refused() -> None:
    settings = _settings_with_tokens(_spec("same", "a"), _spec("same", "b"))
    with pytest.raises(ConfigError, match="share one secret"):
        settings.token_grants()


def test_no_tokens_with_auth_enabled_refuses_to_start() -> None:
    with pytest.raises(ConfigError) as raised:
        CommonSettings().token_grants()
    message = str(raised.value)
    for variable in ("TPF_AUTH_TOKENS", "TPF_AUTH_TOKENS_FILE", "TPF_AUTH_DISABLED"):
        assert variable in message


def test_blank_tokens_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPF_AUTH_TOKENS", "  ")
    with pytest.raises(ConfigError, match="No bearer tokens"):
        load_settings(CommonSettings).token_grants()


def test_no_tokens_with_auth_disabled_is_allowed() -> None:
    assert CommonSettings(auth_disabled=True).token_grants() == []


def test_secrets_stay_out_of_reprs() -> None:
    settings = _settings_with_tokens(
        _spec("secret-in-spec"), database_url="postgresql://u:dbpass@h/db"
    )
    grant = settings.token_grants()[0]
    assert "secret-in-spec" not in repr(settings)
    assert "dbpass" not in repr(settings)
    assert "secret-in-spec" not in repr(grant)
