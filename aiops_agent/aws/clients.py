"""Long-lived aiobotocore clients, one per service, with the project's one retry layer.

Retries live here and only here: botocore's `standard` retry mode (throttling and 5xx, bounded
attempts). Every call has a connect and a read deadline. A hook counts every API call by service,
operation and outcome, for the metrics and for the benchmarks' calls-per-incident figure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

CallHook = Callable[[str, str, str], None]
"""(service, operation, outcome) -> None; outcome is "ok" or the AWS error code."""

USER_AGENT_MARKER = "aiops-agent"
"""Appended to every call's user agent: CloudTrail records it, and the loop breaker knows it."""


class AwsClients:
    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        on_call: CallHook | None = None,
        session: AioSession | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._session = session or get_session()
        self._config = AioConfig(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent_extra=USER_AGENT_MARKER,
            max_pool_connections=50,
        )
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        if on_call is not None:
            self._register_hook(on_call)

    def _register_hook(self, on_call: CallHook) -> None:
        def after_call(
            http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any
        ) -> None:
            if model is None:
                return
            service = model.service_model.endpoint_prefix
            outcome = "ok"
            if isinstance(parsed, dict) and "Error" in parsed:
                outcome = str(parsed["Error"].get("Code") or "error")
            on_call(service, model.name, outcome)

        def after_error(model: Any = None, exception: Exception | None = None, **_: Any) -> None:
            if model is not None and exception is not None:
                on_call(model.service_model.endpoint_prefix, model.name, type(exception).__name__)

        self._session.register("after-call", after_call)
        self._session.register("after-call-error", after_error)

    async def client(self, service: str, region: str | None = None) -> Any:
        """The shared client for `service` in `region` (default: ours), created on first use."""
        key = f"{service}@{region or self.region}"
        existing = self._clients.get(key)
        if existing is not None:
            return existing
        created = await self._stack.enter_async_context(
            self._session.create_client(
                service,
                region_name=region or self.region,
                endpoint_url=self.endpoint_url,
                config=self._config,
            )
        )
        # Another task may have created it while we awaited; keep the first, close ours later.
        return self._clients.setdefault(key, created)

    async def close(self) -> None:
        self._clients.clear()
        await self._stack.aclose()

    async def __aenter__(self) -> AwsClients:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
