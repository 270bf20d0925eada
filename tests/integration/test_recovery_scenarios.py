"""Issue 4's scenarios, each against the moto server with the real catalog and DynamoDB store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from aiops_agent.app import Components, build_components
from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.messages import Approved, Rejected
from aiops_agent.domain.models import Incident, WorkflowState
from aiops_agent.intake.envelope import parse_event
from aiops_agent.notify.sns import LogNotifier
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings
from aiops_agent.store.tables import ensure_tables

S = WorkflowState
AMI = "ami-12c6146b"


@dataclass
class Rig:
    parts: Components
    metrics: Metrics
    notifier: LogNotifier
    aws: AwsClients

    def calls(self, operation: str) -> float:
        return sum(
            s.value
            for family in self.metrics.registry.collect()
            if family.name == "aiops_aws_api_calls"
            for s in family.samples
            if s.name.endswith("_total") and s.labels.get("operation") == operation
        )

    async def handle(self, body: dict[str, Any]) -> list[Incident]:
        out = []
        for event in parse_event(json.dumps(body)):
            incident = await self.parts.engine.handle_event(event)
            if incident is not None:
                out.append(incident)
        return out


@pytest.fixture
async def make_rig(moto_endpoint: str, unique: str) -> AsyncIterator[Any]:
    opened: list[AwsClients] = []

    async def make(**overrides: Any) -> Rig:
        settings = Settings(
            aws_endpoint_url=moto_endpoint,
            incident_table=f"inc-{unique}",
            patterns_table=f"pat-{unique}",
            codebuild_project=f"recovery-{unique}",
            verify_interval_seconds=0.2,
            aws_max_attempts=1,
            # These scenarios send EC2 state changes with no CloudTrail record to follow: act
            # at once (the wait for an author: tests/unit/test_engine.py, test_daemon.py).
            **{"attribution_grace_seconds": 0, **overrides},
        )
        metrics = Metrics()
        clients = AwsClients(
            endpoint_url=moto_endpoint, max_attempts=1, on_call=metrics.on_aws_call
        )
        opened.append(clients)
        await ensure_tables(clients, settings.incident_table, settings.patterns_table)
        notifier = LogNotifier()
        parts = build_components(settings, clients, metrics, notifier=notifier)
        return Rig(parts, metrics, notifier, clients)

    yield make
    for clients in opened:
        await clients.close()


def state_change(instance_id: str, state: str, n: int = 0) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"ev-{instance_id}-{state}-{n}",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        # Each stop is a new change, made now (an older time would be an echo of the first).
        "time": datetime.now(UTC).isoformat(),
        "region": "us-east-1",
        "resources": [],
        "detail": {"instance-id": instance_id, "state": state},
    }


async def stopped_instance(aws: AwsClients) -> str:
    ec2 = await aws.client("ec2")
    got = await ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)
    instance_id = str(got["Instances"][0]["InstanceId"])
    await ec2.stop_instances(InstanceIds=[instance_id])
    return instance_id


async def state_of(aws: AwsClients, instance_id: str) -> str:
    ec2 = await aws.client("ec2")
    got = await ec2.describe_instances(InstanceIds=[instance_id])
    return str(got["Reservations"][0]["Instances"][0]["State"]["Name"])


async def test_deleted_function_starts_one_build_even_when_delivered_twice(
    make_rig: Any, unique: str
) -> None:
    rig: Rig = await make_rig()
    iam = await rig.aws.client("iam")
    codebuild = await rig.aws.client("codebuild")
    role = await iam.create_role(RoleName=f"cb-{unique}", AssumeRolePolicyDocument="{}")
    await codebuild.create_project(
        name=f"recovery-{unique}",
        source={"type": "NO_SOURCE", "location": "none", "buildspec": "version: 0.2"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "x",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=role["Role"]["Arn"],
    )
    event = {
        "version": "0",
        "id": f"ct-delete-{unique}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventSource": "lambda.amazonaws.com",
            "eventName": "DeleteFunction20150331",
            "eventTime": "2026-11-25T12:00:00Z",
            "awsRegion": "us-east-1",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/bob"},
            "requestParameters": {"functionName": f"orders-{unique}"},
            "eventID": f"ct-delete-{unique}",
        },
    }
    (first,) = await rig.handle(event)
    (second,) = await rig.handle(event)
    assert second.incident_id == first.incident_id
    assert [r.action for r in first.recovery_actions] == ["iac.restore"]
    assert rig.calls("StartBuild") == 1


async def test_tampered_parameter_gets_its_previous_value_back(make_rig: Any, unique: str) -> None:
    rig: Rig = await make_rig()
    ssm = await rig.aws.client("ssm")
    name = f"/app/{unique}/db-host"
    await ssm.put_parameter(Name=name, Value="db.internal:5432", Type="String")
    tampered = await ssm.put_parameter(
        Name=name, Value="evil.example:5432", Type="String", Overwrite=True
    )
    event = {
        "version": "0",
        "id": f"ct-put-{unique}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ssm",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventSource": "ssm.amazonaws.com",
            "eventName": "PutParameter",
            "eventTime": "2026-11-25T12:00:00Z",
            "awsRegion": "us-east-1",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/eve"},
            "requestParameters": {"name": name, "type": "String", "overwrite": True},
            "responseElements": {"version": tampered["Version"], "tier": "Standard"},
            "eventID": f"ct-put-{unique}",
        },
    }
    (incident,) = await rig.handle(event)
    assert incident.workflow_state is S.COMPLETED, incident.timeline
    got = await ssm.get_parameter(Name=name)
    assert got["Parameter"]["Value"] == "db.internal:5432"


async def test_a_resource_that_keeps_failing_gets_three_attempts_then_a_person(
    make_rig: Any,
) -> None:
    rig: Rig = await make_rig(cooldown_minutes=0.001)
    instance_id = await stopped_instance(rig.aws)
    ec2 = await rig.aws.client("ec2")
    outcomes = []
    for n in range(5):
        (incident,) = await rig.handle(state_change(instance_id, "stopped", n))
        while incident.workflow_state is S.PLANNING and incident.next_check_at is not None:
            resumed = await rig.parts.engine.resume(incident.incident_id)  # the backoff
            assert resumed is not None
            incident = resumed
        outcomes.append(incident.workflow_state)
        await ec2.stop_instances(InstanceIds=[instance_id])  # and it fails again
    assert outcomes[:3] == [S.COMPLETED] * 3
    assert outcomes[3:] == [S.AWAITING_APPROVAL] * 2
    assert rig.calls("StartInstances") == 3, "exactly three attempts, never more"


async def test_a_mass_of_destructive_events_opens_the_breaker(make_rig: Any) -> None:
    # The window is the real clock's: an hour, so that twelve incidents on a loaded machine all
    # fall inside it (with one minute, a slow emulator spread them out and the test failed).
    rig: Rig = await make_rig(breaker_threshold=5, breaker_window_minutes=60)
    ids = [await stopped_instance(rig.aws) for _ in range(12)]
    states = []
    for instance_id in ids:
        (incident,) = await rig.handle(state_change(instance_id, "stopped"))
        states.append(incident.workflow_state)
    assert states[:5] == [S.COMPLETED] * 5
    assert states[5:] == [S.SUPPRESSED] * 7
    assert rig.calls("StartInstances") == 5
    alerts = [n for n in rig.notifier.sent if "circuit breaker" in str(n)]
    assert len(alerts) == 1
    assert [await state_of(rig.aws, i) for i in ids[5:]] == ["stopped"] * 7


async def test_approve_runs_the_plan_and_reject_closes_it(make_rig: Any) -> None:
    rig: Rig = await make_rig()
    approve_me, reject_me = await stopped_instance(rig.aws), await stopped_instance(rig.aws)
    waiting = []
    for instance_id in (approve_me, reject_me):
        event = state_change(instance_id, "stopped")
        event["replay-name"] = "replay-1"  # a replay is never acted on blindly
        (incident,) = await rig.handle(event)
        assert incident.workflow_state is S.AWAITING_APPROVAL
        waiting.append(incident)
    approved = await rig.parts.engine.answer_review(waiting[0].incident_id, Approved(by="ann"))
    resumed = await rig.parts.engine.resume(approved.incident_id)
    assert resumed is not None and resumed.workflow_state is S.COMPLETED
    assert await state_of(rig.aws, approve_me) == "running"
    rejected = await rig.parts.engine.answer_review(
        waiting[1].incident_id, Rejected(by="ann", reason="planned maintenance")
    )
    assert rejected.workflow_state is S.REJECTED
    assert await state_of(rig.aws, reject_me) == "stopped"


async def test_shadow_mode_decides_and_records_but_changes_nothing(make_rig: Any) -> None:
    rig: Rig = await make_rig(mode="shadow")
    instance_id = await stopped_instance(rig.aws)
    (incident,) = await rig.handle(state_change(instance_id, "stopped"))
    assert incident.workflow_state is S.NOTIFIED
    assert [r.status for r in incident.recovery_actions] == ["DRY_RUN"]
    assert any("would run ec2.start_instances" in e.detail for e in incident.timeline)
    assert await state_of(rig.aws, instance_id) == "stopped"
    assert rig.calls("StartInstances") == 0
