"""The SQS bridge's metrics: messages by operation and outcome, poison messages, events.

Labels are the operation (submit, complete), the outcome and the dead-letter cause: closed
sets. Queue URLs, message ids and tenants stay out of them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

OUTCOME_HANDLED = "handled"
OUTCOME_RETRIED = "retried"
OUTCOME_DEAD_LETTERED = "dead_lettered"
OUTCOME_ERROR = "error"


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.messages = Counter(
            "tpf_sqs_messages",
            "Messages received, by operation and outcome: handled (the coordinator answered; "
            "deleted), retried (a transient refusal; left for redelivery), dead_lettered (given "
            "up; deleted), error (an unexpected failure; left for redelivery).",
            ["operation", "outcome"],
            registry=registry,
        )
        self.poison = Counter(
            "tpf_sqs_poison_messages",
            "Messages written to the bridge's dead-letter queue, by operation and cause "
            "(permanent, receives_exhausted, reply_undeliverable).",
            ["operation", "cause"],
            registry=registry,
        )
        self.terminal_events = Counter(
            "tpf_sqs_terminal_events_published",
            "Terminal execution events SQS accepted on the events queue.",
            registry=registry,
        )
