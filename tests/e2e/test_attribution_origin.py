"""Who stopped an instance: the instance says (DescribeInstances `StateReason`), so a system
failure is recovered at once, and a stop requested through the API with no trail to name its
author is not undone without a person.

moto reports every stop as `Client.UserInitiatedShutdown`; the proxy's `state_reason` rule gives
the instance the reason AWS would report after a host failure. Default attribution wait (120 s):
a test that needed the wait would time out long before it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiops_agent.app import build_store, run_daemon
from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.emulator import free_port
from aiops_agent.domain.models import Incident, WorkflowState
from aiops_agent.provision.bootstrap import bootstrap
from aiops_agent.settings import Settings
from tests.aws_proxy import AwsProxy
from tests.aws_rules import Exchange, Reply
from tests.e2e.test_daemon import instance_state, launch, state_change, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def settings(aws: AwsClients, proxy: AwsProxy, unique: str) -> AsyncIterator[Settings]:
    base = Settings(
        aws_endpoint_url=proxy.url,
        incident_table=f"inc-{unique}",
        patterns_table=f"pat-{unique}",
        codebuild_project=f"recovery-{unique}",
        http_port=free_port(),
        receive_wait_seconds=1,
        sweep_seconds=0.5,
        verify_interval_seconds=0.5,
        aws_max_attempts=1,
    )
    boot = await bootstrap(aws, base, queue_name=f"events-{unique}")
    yield base.model_copy(update={"queue_url": boot.queue_url, "sns_topic_arn": boot.sns_topic_arn})


def no_trails(proxy: AwsProxy) -> None:
    """The account has no trail (whatever other tests created in the shared emulator)."""

    def empty(_ex: Exchange, reply: Reply) -> Reply:
        return reply.with_json({"trailList": []}) if reply.status == 200 else reply

    proxy.transform("DescribeTrails", empty)


async def _run_until(
    settings: Settings, aws: AwsClients, instance_id: str, done: Any, within: float
) -> Incident:
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, stop=stop, install_signal_handlers=False))
    try:
        events = await aws.client("events")
        put = await events.put_events(Entries=[state_change(instance_id, "stopped")])
        assert put["FailedEntryCount"] == 0
        store = build_store(settings, aws)

        async def reached() -> Incident | None:
            found = await store.list_incidents(resource_type="ec2")
            mine = [i for i in found if i.resource_id == instance_id and done(i)]
            return mine[0] if mine else None

        incident: Incident = await wait_for(reached, within=within)
        return incident
    finally:
        stop.set()
        assert await asyncio.wait_for(daemon, timeout=30) == 0


async def test_a_system_initiated_stop_is_recovered_without_the_wait(
    aws: AwsClients, proxy: AwsProxy, settings: Settings
) -> None:
    assert settings.attribution_grace_seconds == 120  # the default wait for an author
    instance_id = await launch(aws)
    await (await aws.client("ec2")).stop_instances(InstanceIds=[instance_id])
    reason = proxy.state_reason(
        instance_id,
        code="Server.InternalError",
        message="Server.InternalError: Internal error on the host",
        transition_reason="Server.InternalError",
    )

    incident = await _run_until(
        settings, aws, instance_id, lambda i: i.terminal and not i.pending, within=60
    )

    assert incident.workflow_state is WorkflowState.COMPLETED, incident.timeline
    assert reason.rewritten >= 1
    details = " | ".join(e.detail for e in incident.timeline)
    assert "stopped by AWS or the instance itself" in details
    assert "waiting for its CloudTrail record" not in details
    assert await instance_state(aws, instance_id) in ("pending", "running")


async def test_a_user_stop_with_no_trail_waits_for_a_person(
    aws: AwsClients, proxy: AwsProxy, settings: Settings
) -> None:
    """Stopped through the API (moto's own StateReason), no trail: after the wait for a
    CloudTrail record that cannot come, the plan needs approval instead of undoing the stop."""
    no_trails(proxy)
    settings = settings.model_copy(update={"attribution_grace_seconds": 2})
    instance_id = await launch(aws)
    await (await aws.client("ec2")).stop_instances(InstanceIds=[instance_id])

    incident = await _run_until(
        settings,
        aws,
        instance_id,
        lambda i: i.workflow_state is WorkflowState.AWAITING_APPROVAL,
        within=60,
    )

    details = " | ".join(e.detail for e in incident.timeline)
    assert "no CloudTrail trail records who did it: a person decides" in details, details
    assert "User initiated" in details or "UserInitiatedShutdown" in details
    assert await instance_state(aws, instance_id) == "stopped"
    assert json.dumps(incident.to_public())  # shows as any other waiting incident
