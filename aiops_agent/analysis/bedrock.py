"""The Bedrock analyzer: a model on the Converse API advises, the rules referee (guard.py).

One `converse` call per new event fingerprint, forced to call one tool whose input schema is
generated from `ModelVerdict` (or, for model families that refuse a forced tool, `any` tool or
none: converse.tool_choice_for). The call has a deadline within which throttling is retried
(converse.py); a circuit breaker stops calling after repeated failures; a TTL cache answers
repeated questions.

Whatever goes wrong (no reply in time, throttled, a 5xx, a text reply, malformed JSON, a schema
violation, an action outside the catalog, the breaker open) the rules decide alone, and the
analysis says so: `analyzer="rules-fallback:<reason>"` and a reason line that the state machine
writes to the incident's timeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog

from aiops_agent.actions.registry import CATALOG, ActionRegistry, ActionSpec
from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.domain.models import Analysis, NormalizedEvent
from aiops_agent.obs.metrics import Metrics

from .cache import TtlCache, fingerprint
from .converse import BedrockConfig, ClientSource, ConverseCaller, ModelUnavailable
from .guard import ANALYZER_NAME, reconcile
from .prompt import SYSTEM_PROMPT, user_message
from .schema import ModelVerdict, ReplyRejected, parse_reply, tool_config

__all__ = [
    "FALLBACK_PREFIX",
    "BedrockAnalyzer",
    "BedrockConfig",
    "ClientSource",
    "HistorySource",
    "ModelUnavailable",
]

log = structlog.get_logger(__name__)

FALLBACK_PREFIX = "rules-fallback:"

_REJECT_TEXT = {
    "no_tool_call": "no tool call",
    "malformed_json": "malformed JSON",
    "schema_violation": "schema violation",
    "action_outside_catalog": "action outside catalog",
    "stop_reason": "unexpected stop reason",
}


class HistorySource(Protocol):
    async def similar(self, event: NormalizedEvent) -> list[dict[str, Any]]: ...


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
        self._rules = rules
        self.config = config
        self._metrics = metrics
        self._history = history
        self._catalog = catalog
        self._caller = ConverseCaller(
            clients=clients,
            config=config,
            label=ANALYZER_NAME,
            breaker_name="analyzer",
            metrics=metrics,
            clock=clock,
        )
        self.breaker = self._caller.breaker
        self.cache: TtlCache[ModelVerdict] = TtlCache(
            ttl_s=config.cache_ttl_s, max_entries=config.cache_entries, clock=clock
        )

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
        async def build() -> dict[str, Any]:
            history = await self._history.similar(event) if self._history is not None else []
            return {
                "modelId": self.config.model_id,
                "system": [{"text": SYSTEM_PROMPT}],
                "messages": [
                    {"role": "user", "content": [{"text": user_message(event, actions, history)}]}
                ],
                "inferenceConfig": {"temperature": 0.0, "maxTokens": self.config.max_tokens},
                "toolConfig": tool_config(allowed),
            }

        response = await self._caller.call(build)
        verdict = parse_reply(response, allowed)
        self._count("ok")
        return verdict

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

    def _count(self, outcome: str) -> None:
        self._caller.count(outcome)
