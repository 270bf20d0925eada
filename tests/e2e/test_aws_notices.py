"""AWS's own notices through the daemon (issue 14): a GuardDuty finding, a Spot interruption
warning, a KMS key deletion and a kind the agent has no rule for, sent through SQS as EventBridge
delivers them, are handled: notified, none dead-lettered, counted by kind. The reclaimed Spot
instance's stop that follows is not recovered (no StartInstances), and an EventBridge Scheduler
event (detail as the string "{}") is simply recorded.

The payloads are issue 14's public samples (tests/fixtures/events_more), with the instance id
and time of the Spot warning set to a real instance of the emulator and to now.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import Incident, WorkflowState
from tests.aws_proxy import AwsProxy
from tests.conftest import MORE_EVENTS_DIR
from tests.e2e.agent_process import (
    ec2_state_event,
    instance_states,
    launch_instances,
    metric,
    queue_depth,
    send_bodies,
    wait_for,
)
from tests.e2e.conftest import MakeStack, StartAgent


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((MORE_EVENTS_DIR / f"{name}.json").read_text())
    return loaded


def spot_warning(instance_id: str) -> dict[str, Any]:
    event = payload("ec2_spot_itn_nth")
    event["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["resources"] = [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"]
    event["detail"]["instance-id"] = instance_id
    return event


@pytest.mark.timeout(180)
async def test_aws_notices_are_handled_not_dead_lettered(
    aws: AwsClients, make_stack: MakeStack, proxy: AwsProxy, start_agent: StartAgent
) -> None:
    stack = await make_stack(visibility_timeout=30)
    ec2, sqs = await aws.client("ec2"), await aws.client("sqs")
    (instance,) = await launch_instances(ec2, 1)  # stopped, as AWS leaves a reclaimed one
    agent = await start_agent(stack, proxy.url)

    notices = {
        "guardduty": payload("guardduty_finding_high_notifyslack"),
        "spot": spot_warning(instance),
        "kms": payload("kms_cmk_deletion_kmsdocs"),
        "inspector": payload("inspector2_finding_notifyslack"),
        "scheduler": payload("scheduler_detail_string_powertools"),
    }
    await send_bodies(sqs, stack.queue_url, [json.dumps(b) for b in notices.values()])

    async def notified() -> list[Incident] | None:
        found = await stack.store.list_incidents(limit=50)
        done = [i for i in found if i.terminal and not i.pending]
        return done if len(done) >= 4 else None

    incidents = await wait_for(notified, within=60, interval=0.5, what="four notices notified")
    by_type = {(i.resource_type, i.resource_id): i for i in incidents}
    assert set(by_type) == {
        ("guardduty", "sample-id-2"),
        ("ec2", instance),
        ("kms", "1234abcd-12ab-34cd-56ef-1234567890ab"),
        ("ec2", "i-12345678901234567"),
    }
    assert {i.workflow_state for i in incidents} == {WorkflowState.NOTIFIED}
    assert all(i.recovery_actions == () for i in incidents)

    # Later (AWS: two minutes), EC2 reports the reclaimed instance stopped, without an author.
    # Its time is after the warning was handled, as it would be: not a late echo of it.
    warned = by_type[("ec2", instance)]
    stop = ec2_state_event(instance, "stopped", at=warned.updated_at + timedelta(seconds=2))
    await send_bodies(sqs, stack.queue_url, [json.dumps(stop)])

    async def stop_closed() -> Incident | None:
        found = await stack.store.list_incidents(limit=50)
        stop = [i for i in found if i.event and i.event.action == "state:stopped"]
        return stop[0] if stop and stop[0].terminal else None

    stopped = await wait_for(stop_closed, within=60, interval=0.5, what="the stop judged")
    assert stopped.workflow_state is WorkflowState.SUPPRESSED
    assert "AWS reclaimed this Spot instance" in stopped.timeline[-1].detail
    assert proxy.select("StartInstances") == []
    assert (await instance_states(ec2, [instance]))[instance] == "stopped"

    async def drained() -> bool:
        return await queue_depth(sqs, stack.queue_url) == (0, 0)

    await wait_for(drained, within=30, interval=0.5, what="the queue drained")
    assert await queue_depth(sqs, stack.dead_letter_queue_url) == (0, 0)
    metrics = await agent.text("/metrics")
    assert metric(metrics, "aiops_messages_dead_lettered_total") == 0
    assert metric(metrics, "aiops_sqs_messages_total", outcome="deleted") == 6
    kinds = "aiops_event_kinds_total"
    for source, detail_type, normalizer in [
        ("aws.guardduty", "GuardDuty Finding", "specific"),
        ("aws.ec2", "EC2 Spot Instance Interruption Warning", "specific"),
        ("aws.kms", "KMS CMK Deletion", "specific"),
        ("aws.inspector2", "Inspector2 Finding", "generic"),
        ("aws.scheduler", "Scheduled Event", "generic"),
        ("aws.ec2", "EC2 Instance State-change Notification", "specific"),
    ]:
        assert (
            metric(metrics, kinds, source=source, detail_type=detail_type, normalizer=normalizer)
            == 1
        )
