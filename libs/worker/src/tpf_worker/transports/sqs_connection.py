"""One aiobotocore SQS client, opened from an `SqsConfig`."""

import contextlib
from typing import Any

from aiobotocore.session import get_session

from tpf_worker.transports.sqs_settings import SqsConfig


class SqsConnection:
    """One aiobotocore SQS client, opened by `open` and closed by `close`."""

    def __init__(self, config: SqsConfig) -> None:
        self._config = config
        self._stack = contextlib.AsyncExitStack()
        self.client: Any = None

    async def open(self) -> None:
        kwargs: dict[str, str] = {"region_name": self._config.region}
        if self._config.endpoint_url:
            kwargs["endpoint_url"] = self._config.endpoint_url
        if self._config.access_key_id and self._config.secret_access_key:
            kwargs["aws_access_key_id"] = self._config.access_key_id
            kwargs["aws_secret_access_key"] = self._config.secret_access_key
        self.client = await self._stack.enter_async_context(
            get_session().create_client("sqs", **kwargs)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self.client = None
