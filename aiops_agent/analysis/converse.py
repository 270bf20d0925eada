"""One guarded Bedrock Converse call: circuit breaker, deadline, metrics, token cost.

Shared by the event analyzer (`bedrock.py`) and the log assessor
(`aiops_agent/logs/assessor.py`). `call` returns the raw Converse response or raises
`ModelUnavailable` with a bounded reason (`breaker_open`, `timeout`, `throttled`, `error`);
what a reply means is the caller's business. Throttling is retried by botocore's standard retry
mode on the client (the project's one retry layer), not here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from aiops_agent.obs.metrics import Metrics

from .breaker import CircuitBreaker

log = structlog.get_logger(__name__)

SERVICE = "bedrock-runtime"


class ClientSource(Protocol):
    """Where the bedrock-runtime client comes from: `AwsClients` or anything shaped like it."""

    async def client(self, service: str, region: str | None = None) -> Any: ...


@dataclass(frozen=True)
class BedrockConfig:
    model_id: str
    confidence_threshold: float = 0.8
    timeout_s: float = 20.0
    max_tokens: int = 1024
    breaker_failures: int = 5
    breaker_cool_off_s: float = 60.0
    cache_ttl_s: float = 300.0
    cache_entries: int = 1024
    input_cost_per_1k: float = 0.003
    """US dollars per 1,000 input tokens (Claude 3.5 Sonnet on-demand list price)."""
    output_cost_per_1k: float = 0.015


class ModelUnavailable(Exception):
    """No usable answer came back. `reason` is a bounded metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ConverseCaller:
    """Calls Converse for one component (`label`: its `analyzer` metric label and breaker)."""

    def __init__(
        self,
        *,
        clients: ClientSource,
        config: BedrockConfig,
        label: str,
        breaker_name: str,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self.config = config
        self.label = label
        self._breaker_name = breaker_name
        self._metrics = metrics
        self.breaker = CircuitBreaker(
            name=breaker_name,
            failure_threshold=config.breaker_failures,
            cool_off_s=config.breaker_cool_off_s,
            clock=clock,
            on_change=self._on_breaker,
        )
        if metrics is not None:
            metrics.breaker_open.labels(breaker=breaker_name).set(0)

    async def call(self, build: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Build the request (inside the breaker's slot) and send it within the deadline."""
        if not self.breaker.allow():
            self.count("breaker_open")
            raise ModelUnavailable(
                "breaker_open",
                f"circuit breaker open, next try in {self.breaker.retry_in():.0f} s",
            )
        started = time.perf_counter()
        try:
            request = await build()
            started = time.perf_counter()
            response = await self._converse(request)
        except ModelUnavailable:
            self.breaker.record_failure()
            raise
        except BaseException:
            self.breaker.release()
            raise
        finally:
            if self._metrics is not None:
                self._metrics.analyzer_latency.labels(analyzer=self.label).observe(
                    time.perf_counter() - started
                )
        self.breaker.record_success()
        self._usage(response)
        return response

    async def _converse(self, request: dict[str, Any]) -> dict[str, Any]:
        timeout_s = self.config.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                client = await self._clients.client(SERVICE)
                response: dict[str, Any] = await client.converse(**request)
                return response
        except TimeoutError:
            self.count("timeout")
            raise ModelUnavailable("timeout", f"no reply within {timeout_s:g} s") from None
        except Exception as exc:
            code = error_code(exc)
            if code in ("ThrottlingException", "TooManyRequestsException"):
                self.count("throttled")
                raise ModelUnavailable("throttled", f"{code} after retries") from None
            self.count("error")
            shown = code or type(exc).__name__
            log.warning("analysis.model_error", error=shown, detail=str(exc)[:200])
            raise ModelUnavailable("error", shown[:64]) from None

    def _usage(self, response: dict[str, Any]) -> None:
        if self._metrics is None:
            return
        usage = response.get("usage") or {}
        tokens_in = _count_of(usage.get("inputTokens"))
        tokens_out = _count_of(usage.get("outputTokens"))
        tokens = self._metrics.analyzer_tokens
        tokens.labels(analyzer=self.label, direction="input").inc(tokens_in)
        tokens.labels(analyzer=self.label, direction="output").inc(tokens_out)
        cost = (
            tokens_in * self.config.input_cost_per_1k + tokens_out * self.config.output_cost_per_1k
        ) / 1000
        self._metrics.analyzer_cost.labels(analyzer=self.label).inc(cost)

    def count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.analyzer_requests.labels(analyzer=self.label, outcome=outcome).inc()

    def _on_breaker(self, is_open: bool) -> None:
        if self._metrics is not None:
            self._metrics.breaker_open.labels(breaker=self._breaker_name).set(1 if is_open else 0)


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "")
    return ""


def _count_of(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0
