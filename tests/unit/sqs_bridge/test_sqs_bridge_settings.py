"""BridgeSettings: required queues, consistent visibility, and no tokens needed for health."""

from __future__ import annotations

import pytest

from tpf_config import ConfigError, load_settings
from tpf_sqs_bridge.settings import BridgeSettings

QUEUES = {
    "TPF_SQS_SUBMIT_QUEUE_URL": "http://sqs/1/submit",
    "TPF_SQS_DEAD_LETTER_QUEUE_URL": "http://sqs/1/dlq",
}


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> BridgeSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(BridgeSettings)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, **QUEUES)
    assert (settings.sqs_batch_size, settings.sqs_wait_time_s) == (10, 10)
    assert (settings.sqs_visibility_timeout_s, settings.sqs_max_receives) == (30, 5)
    assert settings.sqs_events_queue_url is None and settings.events_tenant_ids == ()
    assert settings.events_batch_size == 100
    assert settings.token_grants() == [], "health needs no bearer token"


def test_an_input_queue_and_the_dead_letter_queue_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match="TPF_SQS_SUBMIT_QUEUE_URL"):
        load(monkeypatch, TPF_SQS_DEAD_LETTER_QUEUE_URL="http://sqs/1/dlq")
    with pytest.raises(ConfigError, match="TPF_SQS_DEAD_LETTER_QUEUE_URL"):
        # Blank reads as unset.
        load(
            monkeypatch,
            TPF_SQS_COMPLETION_QUEUE_URL="http://sqs/1/c",
            TPF_SQS_DEAD_LETTER_QUEUE_URL=" ",
        )


def test_the_heartbeat_must_beat_the_visibility_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="TPF_SQS_VISIBILITY_HEARTBEAT_S"):
        load(
            monkeypatch,
            **QUEUES,
            TPF_SQS_VISIBILITY_TIMEOUT_S="5",
            TPF_SQS_VISIBILITY_HEARTBEAT_S="5",
        )


def test_batch_size_is_bounded_by_sqs(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="TPF_SQS_BATCH_SIZE"):
        load(monkeypatch, **QUEUES, TPF_SQS_BATCH_SIZE="11")


def test_secret_references_are_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(
        monkeypatch,
        **QUEUES,
        TPF_COORDINATOR_TOKEN="env:BRIDGE_TOKEN",
        BRIDGE_TOKEN="s3cret",
        TPF_SQS_ACCESS_KEY_ID="AKID",
        TPF_SQS_SECRET_ACCESS_KEY="env:BRIDGE_SECRET",
        BRIDGE_SECRET="shh",
        TPF_EVENTS_TENANTS=" a, b ,",
    )
    assert settings.resolved_coordinator_token() == "s3cret"
    assert settings.resolved_sqs_credentials() == ("AKID", "shh")
    assert settings.events_tenant_ids == ("a", "b")
    assert "s3cret" not in repr(settings)


def test_the_event_cursor_is_named_after_the_events_queue_unless_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = "https://sqs.eu-west-1.amazonaws.com/123/orders-events"
    derived = load(monkeypatch, **QUEUES, TPF_SQS_EVENTS_QUEUE_URL=events)
    assert derived.events_cursor_name == f"sqs-bridge:{events}"
    named = load(monkeypatch, **QUEUES, TPF_SQS_EVENTS_QUEUE_URL=events, TPF_EVENTS_CURSOR="b1")
    assert named.events_cursor_name == "b1"
    with pytest.raises(ConfigError, match="TPF_EVENTS_CURSOR"):
        load(monkeypatch, **QUEUES, TPF_EVENTS_CURSOR="x" * 257)
    with pytest.raises(ConfigError, match="TPF_EVENTS_BATCH_SIZE"):
        load(monkeypatch, **QUEUES, TPF_EVENTS_BATCH_SIZE="1001")
