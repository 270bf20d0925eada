"""The recovery benchmark's two stops, as the agent sees them through the realism proxy: a stop
by a system fault reads as AWS reports a scheduled retirement, a person's stop as moto's own
user-initiated stop (bench/recovery_cases.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.aws.origin import InstanceOrigin
from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.normalize import parse_event
from bench.recovery_cases import (
    ACCOUNT,
    PERSON_STOP,
    SYSTEM_STOP,
    SYSTEM_STOP_CODE,
    SYSTEM_STOP_MESSAGE,
    Case,
    cases,
)
from tests.aws_proxy import AwsProxy

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def through(proxy: AwsProxy) -> AsyncIterator[AwsClients]:
    """The agent's view: clients through the proxy."""
    async with AwsClients(endpoint_url=proxy.url, max_attempts=1) as clients:
        yield clients


def delivered(entry: dict[str, Any], region: str) -> list[NormalizedEvent]:
    """A PutEvents entry as EventBridge delivers it to the queue, normalized by the agent."""
    envelope = {
        "version": "0",
        "id": "5c6b2a0e-0000-4000-8000-000000000000",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": entry.get("Resources", []),
        "detail": json.loads(entry["Detail"]),
    }
    return parse_event(json.dumps(envelope))


async def _stop(case: Case, aws: AwsClients) -> tuple[str, list[NormalizedEvent]]:
    res = await case.prepare(aws)
    entries = await case.act(aws, res)
    events = [e for entry in entries for e in delivered(entry, aws.region)]
    return res[case.key], events


async def _describe(clients: AwsClients, instance_id: str) -> dict[str, Any]:
    got = await (await clients.client("ec2")).describe_instances(InstanceIds=[instance_id])
    return dict(got["Reservations"][0]["Instances"][0])


async def test_a_system_fault_reads_as_aws_reports_a_scheduled_retirement(
    aws: AwsClients, proxy: AwsProxy, through: AwsClients
) -> None:
    by_name = {c.name: c for c in cases(proxy)}
    instance_id, events = await _stop(by_name[SYSTEM_STOP], aws)

    # EventBridge: the two state changes of a stop, with no author and no CloudTrail record.
    assert [(e.source, e.action, e.principal) for e in events] == [
        ("aws.ec2", "state:stopping", None),
        ("aws.ec2", "state:stopped", None),
    ]
    assert {e.resource_id for e in events} == {instance_id}
    # DescribeInstances, as the agent reads it: the system's reason, not moto's user stop.
    seen = await _describe(through, instance_id)
    assert seen["State"]["Name"] == "stopped"
    assert seen["StateReason"] == {"Code": SYSTEM_STOP_CODE, "Message": SYSTEM_STOP_MESSAGE}
    assert seen["StateTransitionReason"] == SYSTEM_STOP_CODE
    assert (await _describe(aws, instance_id))["StateReason"]["Code"] == (
        "Client.UserInitiatedShutdown"
    )  # moto's own answer: what the proxy is there for
    assert await InstanceOrigin(through).origin(events[-1]) == ("system", SYSTEM_STOP_MESSAGE)

    # Started again (the agent's recovery): the reason of that stop is no longer reported.
    await (await aws.client("ec2")).start_instances(InstanceIds=[instance_id])
    running = await _describe(through, instance_id)
    assert running["State"]["Name"] == "running"
    assert running.get("StateReason", {}).get("Code") != SYSTEM_STOP_CODE


async def test_a_persons_stop_reads_as_a_users_through_the_same_proxy(
    aws: AwsClients, proxy: AwsProxy, through: AwsClients
) -> None:
    by_name = {c.name: c for c in cases(proxy)}
    instance_id, events = await _stop(by_name[PERSON_STOP], aws)

    assert [(e.action, e.principal) for e in events] == [("state:stopped", None)]
    who, said = await InstanceOrigin(through).origin(events[-1])
    assert who == "user", said
    assert (await _describe(through, instance_id))["StateReason"]["Code"] == (
        "Client.UserInitiatedShutdown"
    )
