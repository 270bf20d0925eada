"""One guarded Bedrock Converse call: circuit breaker, deadline, metrics, token cost.

Shared by the event analyzer (`bedrock.py`) and the log assessor
(`aiops_agent/logs/assessor.py`). `call` returns the raw Converse response or raises
`ModelUnavailable` with a bounded reason (`breaker_open`, `timeout`, `throttled`,
`rejected_request`, `error`); what a reply means is the caller's business.

Retries live here, inside the deadline, for Bedrock only: the bedrock-runtime client makes one
attempt per call (`analysis.factory.build_bedrock_clients`), and throttling (or a 503) is retried
with jittered backoff while the deadline leaves time. botocore's standard mode would back off up
to 20 s per retry behind a 20 s deadline, so a throttled call read as a timeout; here a call that
was still throttled when time ran out is counted and reported as `throttled`.

`toolChoice: {tool: ...}` is accepted by some model families only (Anthropic Claude 3 and later,
Amazon Nova; `{any: {}}` also by Mistral Large; AWS's ToolChoice reference): the request is
adapted to the model id (`tool_choice_for`), and if Bedrock still refuses the field with a
ValidationException the call is repeated once with the next weaker choice, remembered per model.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

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


RETRYABLE = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "ServiceUnavailableException"}
)
THROTTLING = frozenset({"ThrottlingException", "TooManyRequestsException"})
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 4.0

ToolChoice = Literal["tool", "any", "auto"]
_CHOICES: tuple[ToolChoice, ...] = ("tool", "any", "auto")
_GEO_PREFIX = re.compile(r"^(?:us|eu|apac|us-gov|ca|jp|au|global)\.")


def model_family(model_id: str) -> str:
    """`anthropic.claude-3-5-sonnet...` from a model id, an inference profile id or either ARN."""
    name = model_id.rsplit("/", 1)[-1].lower()
    return _GEO_PREFIX.sub("", name)


def tool_choice_for(model_id: str) -> ToolChoice:
    """The strongest `toolChoice` the model's family accepts (AWS ToolChoice reference)."""
    family = model_family(model_id)
    if family.startswith("amazon.nova"):
        return "tool"
    if family.startswith("anthropic.claude"):
        # Claude 3 and later; Claude 2 and Instant have no tool use at all.
        return "auto" if re.match(r"anthropic\.claude-(v2|instant)", family) else "tool"
    if family.startswith("mistral.mistral-large"):
        return "any"
    return "auto"


def with_tool_choice(request: dict[str, Any], choice: ToolChoice) -> dict[str, Any]:
    """`request` with its forced tool call weakened to `choice` (no-op without toolConfig)."""
    config = request.get("toolConfig")
    if not isinstance(config, dict) or "toolChoice" not in config:
        return request
    current = config["toolChoice"]
    if choice == "tool" or ("any" in current and choice == "any"):
        return request
    adapted = {k: v for k, v in config.items() if k != "toolChoice"}
    if choice == "any":
        adapted["toolChoice"] = {"any": {}}
    return {**request, "toolConfig": adapted}


def _refuses_tool_choice(exc: BaseException) -> bool:
    return error_code(exc) == "ValidationException" and "toolchoice" in str(exc).lower()


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
        self._tool_choice: dict[str, ToolChoice] = {}
        """Per model id: the tool choice that worked (or the weakest after a refusal)."""
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
        attempts = 0
        last_code = ""
        try:
            async with asyncio.timeout(timeout_s):
                client = await self._clients.client(SERVICE)
                while True:
                    attempts += 1
                    try:
                        return await self._send(client, request)
                    except Exception as exc:
                        last_code = error_code(exc)
                        if last_code not in RETRYABLE:
                            raise
                    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempts - 1))
                    await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
        except TimeoutError:
            if last_code in THROTTLING:
                self.count("throttled")
                raise ModelUnavailable(
                    "throttled",
                    f"{last_code}: still throttled after {attempts} attempts in {timeout_s:g} s",
                ) from None
            self.count("timeout")
            raise ModelUnavailable("timeout", f"no reply within {timeout_s:g} s") from None
        except Exception as exc:
            code = error_code(exc)
            if code in THROTTLING:  # not reached while time remains; kept for other clients
                self.count("throttled")
                raise ModelUnavailable("throttled", f"{code} after retries") from None
            self.count("error")
            shown = code or type(exc).__name__
            log.warning("analysis.model_error", error=shown, detail=str(exc)[:200])
            if code == "ValidationException":
                raise ModelUnavailable(
                    "rejected_request", f"Bedrock refused the request: {str(exc)[:160]}"
                ) from None
            raise ModelUnavailable("error", shown[:64]) from None

    async def _send(self, client: Any, request: dict[str, Any]) -> dict[str, Any]:
        """One Converse call with the strongest tool choice this model has not refused."""
        model_id = str(request.get("modelId", ""))
        choice = self._tool_choice.get(model_id) or tool_choice_for(model_id)
        while True:
            try:
                response: dict[str, Any] = await client.converse(
                    **with_tool_choice(request, choice)
                )
                self._tool_choice[model_id] = choice
                return response
            except Exception as exc:
                if not _refuses_tool_choice(exc) or choice == "auto":
                    raise
                weaker = _CHOICES[_CHOICES.index(choice) + 1]
                log.warning(
                    "analysis.tool_choice_refused",
                    model_id=model_id,
                    refused=choice,
                    next=weaker,
                    detail=str(exc)[:200],
                )
                choice = weaker

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
