"""Build the configured analyzer: the rules alone, or the Bedrock model refereed by the rules.

    analyzer = build_analyzer(settings, clients, metrics, store)

`clients` provides the `bedrock-runtime` client. With `AIOPS_ANALYZER=bedrock` (or a
`AIOPS_BEDROCK_ENDPOINT_URL`: a fake Bedrock beside the emulator in the demo and the tests),
`build_bedrock_clients(settings)` makes dedicated clients to pass as `bedrock_clients`: one
attempt per call and a read timeout of the Bedrock deadline, because the Converse caller retries
throttling itself inside its deadline (analysis/converse.py); its owner closes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.ports import Analyzer, IncidentStore
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings

from .bedrock import BedrockAnalyzer, BedrockConfig, ClientSource
from .history import IncidentHistory
from .rules import RulesAnalyzer


def bedrock_config(settings: Settings) -> BedrockConfig:
    return BedrockConfig(
        model_id=settings.model_id,
        confidence_threshold=settings.confidence_threshold,
        timeout_s=settings.bedrock_timeout_seconds,
        breaker_failures=settings.bedrock_breaker_failures,
        breaker_cool_off_s=settings.bedrock_breaker_cool_off_seconds,
        cache_ttl_s=settings.bedrock_cache_seconds,
    )


def build_rules(settings: Settings, own_principals: Sequence[str] = ()) -> RulesAnalyzer:
    return RulesAnalyzer(
        trusted_principals=settings.trusted_principals,
        own_principals=own_principals,
        codebuild_project=settings.codebuild_project,
    )


def build_bedrock_clients(settings: Settings, metrics: Metrics | None = None) -> AwsClients | None:
    """Dedicated bedrock-runtime clients (one attempt per call), or None with the rules alone."""
    if settings.analyzer != "bedrock" and not settings.bedrock_endpoint_url:
        return None
    return AwsClients(
        endpoint_url=settings.bedrock_endpoint_url or settings.aws_endpoint_url,
        region=settings.region,
        max_attempts=1,
        read_timeout=settings.bedrock_timeout_seconds,
        on_call=metrics.on_aws_call if metrics is not None else None,
    )


def build_analyzer(
    settings: Settings,
    clients: ClientSource,
    metrics: Metrics | None,
    store: IncidentStore | None,
    *,
    bedrock_clients: ClientSource | None = None,
    rules: RulesAnalyzer | None = None,
) -> Analyzer:
    """`RulesAnalyzer` for `AIOPS_ANALYZER=rules`, the guarded `BedrockAnalyzer` for `bedrock`.

    Pass `rules` to share the composition root's configured rules (own principals): the same
    referee then judges alone or over the model.
    """
    rules = rules or build_rules(settings)
    if settings.analyzer == "rules":
        return rules
    return BedrockAnalyzer(
        clients=bedrock_clients or clients,
        rules=rules,
        config=bedrock_config(settings),
        metrics=metrics,
        history=IncidentHistory(store) if store is not None else None,
    )
