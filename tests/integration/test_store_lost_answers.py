"""A write that landed but whose answer was lost (a timeout, a 500) is retried by botocore; the
retry's condition then fails on the write itself. DynamoDB makes only a transaction's retry
idempotent, and only within 10 minutes of its token: a PutItem's retry is refused. The store
recognises its own item and reports the write done, not another writer's."""

from __future__ import annotations

from datetime import timedelta

from aiops_agent.aws.clients import AwsClients
from aiops_agent.store.dynamodb import DynamoIncidentStore
from aiops_agent.store.tables import ensure_tables
from tests.aws_proxy import AwsProxy
from tests.integration.test_audit_trail import T0, fresh
from tests.integration.test_emulator_isolation import AnswerLost


async def test_a_put_whose_answer_was_lost_is_the_stores_own_write(
    aws: AwsClients, proxy: AwsProxy, unique: str
) -> None:
    await ensure_tables(aws, f"inc-{unique}", f"pat-{unique}")
    incident = fresh()
    async with AwsClients(endpoint_url=proxy.url, max_attempts=3) as retrying:
        store = DynamoIncidentStore(retrying, f"inc-{unique}")  # no audit: plain PutItem
        proxy.add(AnswerLost(operation="PutItem"))
        assert await store.create(incident) is True  # not "another delivery stored it"
        assert len(proxy.select(operation="PutItem")) == 2
        # A real second delivery: the same event, decided again a moment later.
        again = incident.model_copy(update={"created_at": T0 + timedelta(seconds=1)})
        assert await store.create(again) is False
        stored = incident.model_copy(update={"version": 1})
        claim = stored.model_copy(update={"updated_at": T0 + timedelta(seconds=5)})
        proxy.add(AnswerLost(operation="PutItem"))
        saved = await store.save(claim)  # landed, answer lost, retried: ours, not a conflict
        assert saved.version == 2 and saved.updated_at == claim.updated_at
        assert len(proxy.select(operation="PutItem")) == 5
    assert await DynamoIncidentStore(aws, f"inc-{unique}").get(incident.incident_id) == saved
