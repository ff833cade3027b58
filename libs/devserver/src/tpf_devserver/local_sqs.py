"""A local SQS for `make dev`: `moto_server` (from the dev environment) and the bridge's queues.

Nothing in it reaches AWS: moto keeps queues in memory, so they start empty on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.session

# Fake credentials: moto accepts any, botocore refuses to sign without some.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "dev", "AWS_SECRET_ACCESS_KEY": "dev"}
REGION = "us-east-1"
QUEUES = ("orders-submit", "orders-complete", "orders-replies", "orders-events", "bridge-dlq")


@dataclass(frozen=True)
class BridgeQueues:
    submit: str
    complete: str
    replies: str
    events: str
    dead_letters: str


def create_queues(endpoint_url: str) -> BridgeQueues:
    client = botocore.session.get_session().create_client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    urls = [client.create_queue(QueueName=name)["QueueUrl"] for name in QUEUES]
    return BridgeQueues(*urls)


def bridge_env(endpoint_url: str, queues: BridgeQueues) -> dict[str, str]:
    return {
        "TPF_SQS_ENDPOINT_URL": endpoint_url,
        "TPF_SQS_REGION": REGION,
        "TPF_SQS_ACCESS_KEY_ID": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "TPF_SQS_SECRET_ACCESS_KEY": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "TPF_SQS_SUBMIT_QUEUE_URL": queues.submit,
        "TPF_SQS_COMPLETION_QUEUE_URL": queues.complete,
        "TPF_SQS_RESPONSE_QUEUE_URL": queues.replies,
        "TPF_SQS_EVENTS_QUEUE_URL": queues.events,
        "TPF_SQS_DEAD_LETTER_QUEUE_URL": queues.dead_letters,
    }
