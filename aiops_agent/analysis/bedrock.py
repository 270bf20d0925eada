"""The Bedrock analyzer: a model on the Converse API advises, the rules referee (guard.py).

One `converse` call per new event fingerprint, forced to call one tool whose input schema is
generated from `ModelVerdict`. The call has a deadline (`asyncio.timeout`); throttling is retried
by botocore's standard retry mode on the client (the project's one retry layer), not here; a
circuit breaker stops calling after repeated failures; a TTL cache answers repeated questions.

Whatever goes wrong (no reply in time, throttled, a 5xx, a text reply, malformed JSON, a schema
violation, an action outside the catalog, the breaker open) the rules decide alone, and the
analysis says so: `analyzer="rules-fallback:<reason>"` and a reason line that the state machine
writes to the incident's timeline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from aiops_agent.actions.registry import CATALOG, ActionRegistry, ActionSpec
from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.domain.models import Analysis, NormalizedEvent
from aiops_agent.obs.metrics import Metrics

from .breaker import CircuitBreaker
from .cache import TtlCache, fingerprint
from .guard import ANALYZER_NAME, reconcile
from .prompt import SYSTEM_PROMPT, user_message
from .schema import ModelVerdict, ReplyRejected, parse_reply, tool_config

log = structlog.get_logger(__name__)

SERVICE = "bedrock-runtime"
FALLBACK_PREFIX = "rules-fallback:"

_REJECT_TEXT = {
    "no_tool_call": "no tool call",
    "malformed_json": "malformed JSON",
    "schema_violation": "schema violation",
    "action_outside_catalog": "action outside catalog",
    "stop_reason": "unexpected stop reason",
}


class ClientSource(Protocol):
    """Where the bedrock-runtime client comes from: `AwsClients` or anything shaped like it."""

    async def client(self, service: str, region: str | None = None) -> Any: ...


class HistorySource(Protocol):
    async def similar(self, event: NormalizedEvent) -> list[dict[str, Any]]: ...


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


class BedrockAnalyzer:
    """Implements the `Analyzer` port; falls back to the rules on any failure."""

    name = ANALYZER_NAME

    def __init__(
        self,
        *,
        clients: ClientSource,
        rules: RulesAnalyzer,
        config: BedrockConfig,
        metrics: Metrics | None = None,
        history: HistorySource | None = None,
        catalog: ActionRegistry = CATALOG,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._rules = rules
        self.config = config
        self._metrics = metrics
        self._history = history
        self._catalog = catalog
        self.breaker = CircuitBreaker(
            name="analyzer",
            failure_threshold=config.breaker_failures,
            cool_off_s=config.breaker_cool_off_s,
            clock=clock,
            on_change=self._on_breaker,
        )
        self.cache: TtlCache[ModelVerdict] = TtlCache(
            ttl_s=config.cache_ttl_s, max_entries=config.cache_entries, clock=clock
        )
        if metrics is not None:
            metrics.breaker_open.labels(breaker="analyzer").set(0)

    async def analyze(self, event: NormalizedEvent) -> Analysis:
        rules = self._rules.judge(event)
        actions = self._catalog.for_resource(event.resource_type)
        allowed = [spec.name for spec in actions]
        key = fingerprint(event)
        verdict = self.cache.get(key)
        if verdict is not None:
            self._count("cached")
        else:
            try:
                verdict = await self._ask(event, actions, allowed)
            except ReplyRejected as exc:
                self._count("invalid")
                return self._fallback(
                    event, rules, exc.reason, f"model reply rejected ({_REJECT_TEXT[exc.reason]})"
                )
            except ModelUnavailable as exc:
                return self._fallback(event, rules, exc.reason, f"model unavailable ({exc.detail})")
            self.cache.put(key, verdict)
        if self._metrics is not None:
            self._metrics.analyzer_confidence.labels(analyzer=ANALYZER_NAME).observe(
                verdict.confidence
            )
        analysis = reconcile(verdict, rules, threshold=self.config.confidence_threshold)
        log.info(
            "analysis.model_advised",
            event_id=event.event_id,
            model=verdict.classification.value,
            rules=rules.classification.value,
            decided=analysis.classification.value,
            confidence=verdict.confidence,
            requires_approval=analysis.requires_approval,
            steps=len(analysis.plan),
        )
        return analysis

    # ------------------------------------------------------------------ the call

    async def _ask(
        self, event: NormalizedEvent, actions: Sequence[ActionSpec], allowed: Sequence[str]
    ) -> ModelVerdict:
        if not self.breaker.allow():
            self._count("breaker_open")
            raise ModelUnavailable(
                "breaker_open",
                f"circuit breaker open, next try in {self.breaker.retry_in():.0f} s",
            )
        started = time.perf_counter()
        try:
            history = await self._history.similar(event) if self._history is not None else []
            request = {
                "modelId": self.config.model_id,
                "system": [{"text": SYSTEM_PROMPT}],
                "messages": [
                    {"role": "user", "content": [{"text": user_message(event, actions, history)}]}
                ],
                "inferenceConfig": {"temperature": 0.0, "maxTokens": self.config.max_tokens},
                "toolConfig": tool_config(allowed),
            }
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
                self._metrics.analyzer_latency.labels(analyzer=ANALYZER_NAME).observe(
                    time.perf_counter() - started
                )
        self.breaker.record_success()
        self._usage(response)
        verdict = parse_reply(response, allowed)
        self._count("ok")
        return verdict

    async def _converse(self, request: dict[str, Any]) -> dict[str, Any]:
        """One Converse call within the deadline; failures become `ModelUnavailable`."""
        timeout_s = self.config.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                client = await self._clients.client(SERVICE)
                response: dict[str, Any] = await client.converse(**request)
                return response
        except TimeoutError:
            self._count("timeout")
            raise ModelUnavailable("timeout", f"no reply within {timeout_s:g} s") from None
        except Exception as exc:
            code = _error_code(exc)
            if code in ("ThrottlingException", "TooManyRequestsException"):
                self._count("throttled")
                raise ModelUnavailable("throttled", f"{code} after retries") from None
            self._count("error")
            shown = code or type(exc).__name__
            log.warning("analysis.model_error", error=shown, detail=str(exc)[:200])
            raise ModelUnavailable("error", shown[:64]) from None

    # ------------------------------------------------------------------ outcomes

    def _fallback(self, event: NormalizedEvent, rules: Analysis, reason: str, why: str) -> Analysis:
        if self._metrics is not None:
            self._metrics.analyzer_fallbacks.labels(reason=reason).inc()
        log.warning("analysis.fallback", event_id=event.event_id, reason=reason, detail=why)
        return rules.model_copy(
            update={
                "reasons": (*rules.reasons, f"{why}: rules decided"),
                "analyzer": f"{FALLBACK_PREFIX}{reason}",
            }
        )

    def _usage(self, response: dict[str, Any]) -> None:
        if self._metrics is None:
            return
        usage = response.get("usage") or {}
        tokens_in = _count_of(usage.get("inputTokens"))
        tokens_out = _count_of(usage.get("outputTokens"))
        self._metrics.analyzer_tokens.labels(analyzer=ANALYZER_NAME, direction="input").inc(
            tokens_in
        )
        self._metrics.analyzer_tokens.labels(analyzer=ANALYZER_NAME, direction="output").inc(
            tokens_out
        )
        cost = (
            tokens_in * self.config.input_cost_per_1k + tokens_out * self.config.output_cost_per_1k
        ) / 1000
        self._metrics.analyzer_cost.labels(analyzer=ANALYZER_NAME).inc(cost)

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.analyzer_requests.labels(analyzer=ANALYZER_NAME, outcome=outcome).inc()

    def _on_breaker(self, is_open: bool) -> None:
        if self._metrics is not None:
            self._metrics.breaker_open.labels(breaker="analyzer").set(1 if is_open else 0)


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "")
    return ""


def _count_of(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0
