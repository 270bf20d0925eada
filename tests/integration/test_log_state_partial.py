"""Templates are saved with BatchWriteItem, which may leave `UnprocessedItems` (throughput, an
internal failure): retried, and what stays unsaved is reported by count (the proxy's
`unprocessed` rule; moto processes every item)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from aiops_agent.aws.clients import AwsClients
from aiops_agent.logs.state import PatternStore, TemplateRecord
from aiops_agent.store.tables import PATTERNS_ATTRIBUTE_DEFINITIONS, PATTERNS_KEY_SCHEMA
from tests.aws_proxy import AwsProxy

pytestmark = pytest.mark.timeout(60)


def _records(n: int) -> dict[str, TemplateRecord]:
    return {f"t{i}": TemplateRecord(f"t{i}", f"template {i} <*>", {}, 0, 0) for i in range(n)}


@pytest.mark.parametrize(("times", "unsaved"), [(2, 0), (None, 2)])
async def test_unprocessed_templates_are_retried_and_the_rest_reported(
    aws: AwsClients, moto_endpoint: str, unique: str, times: int | None, unsaved: int
) -> None:
    table = f"pat-{unique}"
    await (await aws.client("dynamodb")).create_table(
        TableName=table,
        KeySchema=PATTERNS_KEY_SCHEMA,
        AttributeDefinitions=PATTERNS_ATTRIBUTE_DEFINITIONS,
        BillingMode="PAY_PER_REQUEST",
    )
    async with (
        AwsProxy(moto_endpoint) as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as through,
    ):
        rule = proxy.unprocessed("BatchWriteItem", count=2, times=times)
        with capture_logs() as logs:
            await PatternStore(through, table).save_templates("g", _records(3))
    _, stored = await PatternStore(aws, table).load("g")
    assert len(stored) == 3 - unsaved
    assert rule.applied >= 2
    warnings = [e for e in logs if e["event"] == "logs.templates_unsaved"]
    assert [w["count"] for w in warnings] == ([unsaved] if unsaved else [])
