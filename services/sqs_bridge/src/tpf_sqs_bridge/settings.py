"""BridgeSettings: the TPF_* variables the SQS bridge reads (documented in docs/sqs-bridge.md)."""

from __future__ import annotations

import os

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from tpf_config import CommonSettings, TokenGrant, env_var_name, resolve_secret_ref


class BridgeSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="TPF_")

    # Only gRPC health and reflection are served here, for probes and tests.
    grpc_port: int = Field(default=50055, ge=0, le=65535)
    # The coordinator the bridge calls, and the bearer token it presents (role `control-plane`
    # or `admin`, scoped to every tenant that sends messages); `env:`/`file:` references allowed.
    coordinator_target: str = "127.0.0.1:50051"
    coordinator_token: str | None = Field(default=None, repr=False)
    # Deadline of one coordinator call; the message stays invisible (extended) meanwhile.
    coordinator_call_timeout_s: float = Field(default=30.0, gt=0)

    # Queues. At least one of the two input queues is required; the dead-letter queue always.
    sqs_submit_queue_url: str | None = None
    sqs_completion_queue_url: str | None = None
    # Where replies go when a message names no `replyQueueUrl`; unset means no reply then.
    sqs_response_queue_url: str | None = None
    # Where terminal events (SUCCEEDED, FAILED, CANCELLED) of the events tenants go; unset: none.
    sqs_events_queue_url: str | None = None
    sqs_dead_letter_queue_url: str | None = None
    # A message failing transiently on this many receives goes to the dead-letter queue.
    sqs_max_receives: int = Field(default=5, ge=1)

    # SQS endpoint and region; unset means the AWS chain (AWS_ENDPOINT_URL, AWS_REGION, ...).
    sqs_endpoint_url: str | None = None
    sqs_region: str | None = None
    # Static credentials (`env:`/`file:` references allowed); unset means the AWS chain
    # (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profile, instance role).
    sqs_access_key_id: str | None = Field(default=None, repr=False)
    sqs_secret_access_key: str | None = Field(default=None, repr=False)

    # ReceiveMessage: messages per batch (SQS allows 1..10) and long-poll wait (0..20 s).
    sqs_batch_size: int = Field(default=10, ge=1, le=10)
    sqs_wait_time_s: int = Field(default=10, ge=0, le=20)
    # Visibility timeout of a received message; while its coordinator call is still running the
    # bridge extends it back to this value every `sqs_visibility_heartbeat_s`.
    sqs_visibility_timeout_s: int = Field(default=30, ge=1, le=43_200)
    sqs_visibility_heartbeat_s: float = Field(default=10.0, gt=0)

    # Terminal events: the tenants (comma-separated) whose executions are announced; empty
    # means every tenant the coordinator token may see.
    events_tenants: str = ""
    # Name of the durable cursor the coordinator keeps for this bridge's place in the feed;
    # bridges with the same name and tenants share it. Unset: derived from the events queue URL.
    events_cursor: str | None = Field(default=None, max_length=256)
    # Terminal events read (and then published) per page.
    events_batch_size: int = Field(default=100, ge=1, le=1000)

    @field_validator(
        "sqs_submit_queue_url",
        "sqs_completion_queue_url",
        "sqs_response_queue_url",
        "sqs_events_queue_url",
        "sqs_dead_letter_queue_url",
        "sqs_endpoint_url",
        "sqs_region",
        "coordinator_token",
        "sqs_access_key_id",
        "sqs_secret_access_key",
        "events_cursor",
    )
    @classmethod
    def _blank_means_unset(cls, value: str | None) -> str | None:
        # `TPF_SQS_EVENTS_QUEUE_URL=` in an env file should read as "not set".
        return value.strip() if value and value.strip() else None

    @model_validator(mode="after")
    def _queues_are_usable(self) -> BridgeSettings:
        name = type(self)
        if self.sqs_submit_queue_url is None and self.sqs_completion_queue_url is None:
            raise ValueError(
                f"set {env_var_name(name, 'sqs_submit_queue_url')} and/or "
                f"{env_var_name(name, 'sqs_completion_queue_url')}: the bridge has nothing to read"
            )
        if self.sqs_dead_letter_queue_url is None:
            raise ValueError(
                f"set {env_var_name(name, 'sqs_dead_letter_queue_url')}: messages the bridge "
                "gives up on are kept there"
            )
        if self.sqs_visibility_heartbeat_s >= self.sqs_visibility_timeout_s:
            raise ValueError(
                f"{env_var_name(name, 'sqs_visibility_heartbeat_s')} must be below "
                f"{env_var_name(name, 'sqs_visibility_timeout_s')}, or a slow call's message "
                "becomes visible before it is extended"
            )
        if (self.sqs_access_key_id is None) != (self.sqs_secret_access_key is None):
            raise ValueError(
                f"set both {env_var_name(name, 'sqs_access_key_id')} and "
                f"{env_var_name(name, 'sqs_secret_access_key')}, or neither"
            )
        return self

    @property
    def events_tenant_ids(self) -> tuple[str, ...]:
        """The events tenants; empty means every tenant in the coordinator token's scope."""
        return tuple(t.strip() for t in self.events_tenants.split(",") if t.strip())

    @property
    def events_cursor_name(self) -> str:
        """The cursor's name: `TPF_EVENTS_CURSOR`, else one per events queue."""
        if self.events_cursor is not None:
            return self.events_cursor
        return f"sqs-bridge:{self.sqs_events_queue_url or ''}"[:256]

    def resolved_coordinator_token(self) -> str | None:
        """The coordinator token with `env:`/`file:` resolved; reads files, so not on the loop."""
        if self.coordinator_token is None:
            return None
        return resolve_secret_ref(
            self.coordinator_token,
            what=env_var_name(type(self), "coordinator_token"),
            environ=os.environ,
        )

    def resolved_sqs_credentials(self) -> tuple[str, str] | None:
        """Static SQS credentials, resolved; None means the AWS credential chain."""
        if self.sqs_access_key_id is None or self.sqs_secret_access_key is None:
            return None
        name = type(self)
        return (
            resolve_secret_ref(
                self.sqs_access_key_id,
                what=env_var_name(name, "sqs_access_key_id"),
                environ=os.environ,
            ),
            resolve_secret_ref(
                self.sqs_secret_access_key,
                what=env_var_name(name, "sqs_secret_access_key"),
                environ=os.environ,
            ),
        )

    def token_grants(self) -> list[TokenGrant]:
        # The bridge serves only gRPC health and reflection, which need no token; an operator
        # should not have to invent bearer tokens for a server with nothing to protect.
        if self.auth_tokens is None and self.auth_tokens_file is None:
            return []
        return super().token_grants()
