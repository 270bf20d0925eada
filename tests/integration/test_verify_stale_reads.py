"""Verification after an action, when the read right after it is stale (eventual consistency).

EC2 and ECS are eventually consistent on AWS: "the result of an API command you run that affects
your Amazon EC2 resources might not be immediately visible to all subsequent commands you run"
(EC2 developer guide). moto answers every read with the newest write, so the proxy's
`stale_reads` answers the reads made right after the action with what they answered before it.

A stale read must not become a FAILED verdict (which bars the action on that resource for the
attempt window) nor a PASSED one (the previous ECS deployment, COMPLETED, read as ours). The
action runs as the engine runs it, and verification goes through the `CommandRunner`, which
takes a FAILED check inside the consistency window for a possibly stale read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiops_agent.actions.registry import CATALOG, ActionDeps, BoundCatalog
from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.messages import Verify, VerifyResult
from aiops_agent.domain.models import (
    ActionRecord,
    Incident,
    NormalizedEvent,
    PlanStep,
    WorkflowState,
)
from aiops_agent.engine.runner import CommandRunner, RunnerConfig
from aiops_agent.notify.sns import SnsNotifier
from tests.aws_proxy import AwsProxy


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t


class Rig:
    """One action executed, then verified as the engine does, with the runner's clock."""

    def __init__(self, clients: AwsClients) -> None:
        self.catalog = BoundCatalog(CATALOG, ActionDeps(clients=clients))
        self.clock = Clock()
        self.runner = CommandRunner(
            analyzer=RulesAnalyzer(),
            catalog=self.catalog,
            planner=None,  # type: ignore[arg-type]  # verification needs no planner
            notifier=SnsNotifier(clients, "arn:aws:sns:us-east-1:123456789012:unused"),
            config=RunnerConfig(),
            clock=self.clock,
        )

    async def act(self, action: str, params: dict[str, Any]) -> Incident:
        outcome = await self.catalog.get(action).execute(params, f"tok-{action}")
        assert outcome.ok, outcome.detail
        now = self.clock.now()
        event = NormalizedEvent(
            event_id="ev-1",
            source="aws.ec2",
            detail_type="test",
            resource_type="ec2",
            resource_id="r-1",
            action="test",
            time=now,
        )
        return Incident(
            incident_id="inc-1",
            event_id=event.event_id,
            resource_type="ec2",
            resource_id="r-1",
            region=event.region,
            resource_key=event.resource_key,
            workflow_state=WorkflowState.VERIFYING,
            plan=(PlanStep(action=action, params=params),),
            recovery_actions=(
                ActionRecord(
                    step=0,
                    action=action,
                    status="SUCCEEDED",
                    started_at=now,
                    finished_at=now,
                    result=outcome.result,
                ),
            ),
            event=event,
            created_at=now,
            updated_at=now,
        )

    async def verify(self, incident: Incident) -> VerifyResult:
        signal = await self.runner.run(incident, Verify(id="verify-1", attempt=1))
        assert isinstance(signal, VerifyResult)
        return signal


async def _stopped_instance(aws: AwsClients) -> str:
    ec2 = await aws.client("ec2")
    resp = await ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    iid = str(resp["Instances"][0]["InstanceId"])
    await ec2.stop_instances(InstanceIds=[iid])
    return iid


async def test_a_stale_stopped_after_start_is_not_a_failure(
    aws: AwsClients, proxy: AwsProxy, proxied: AwsClients
) -> None:
    iid = await _stopped_instance(aws)
    stale = proxy.stale_reads("DescribeInstances", after="StartInstances", seconds=120)
    rig = Rig(proxied)
    incident = await rig.act("ec2.start_instances", {"instance_id": iid})

    first = await rig.verify(incident)

    assert stale.served >= 1, "the read after StartInstances was the stale one"
    assert first.status == "PENDING", first.detail
    assert "instance is stopped" in first.detail and "checking again" in first.detail
    stale.end()  # the replica caught up
    rig.clock.t += timedelta(seconds=10)
    assert (await rig.verify(incident)).status == "PASSED"


async def test_a_start_that_did_not_hold_fails_after_the_window(
    aws: AwsClients, proxy: AwsProxy, proxied: AwsClients
) -> None:
    """The window delays a real failure; it does not hide it."""
    iid = await _stopped_instance(aws)
    rig = Rig(proxied)
    incident = await rig.act("ec2.start_instances", {"instance_id": iid})
    ec2 = await aws.client("ec2")
    await ec2.stop_instances(InstanceIds=[iid])  # stopped again at once (a failing boot)
    assert (await rig.verify(incident)).status == "PENDING"
    rig.clock.t += RunnerConfig().consistency_window
    late = await rig.verify(incident)
    assert late.status == "FAILED" and late.detail == "instance is stopped"


async def test_a_stale_rule_list_after_a_revoke_is_not_a_failure(
    aws: AwsClients, proxy: AwsProxy, proxied: AwsClients, unique: str
) -> None:
    ec2 = await aws.client("ec2")
    group = await ec2.create_security_group(GroupName=f"sg-{unique}", Description="t")
    gid = str(group["GroupId"])
    await ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    stale = proxy.stale_reads(
        "DescribeSecurityGroups", after="RevokeSecurityGroupIngress", seconds=120
    )
    rig = Rig(proxied)
    params = {
        "group_id": gid,
        "cidr": "0.0.0.0/0",
        "ip_protocol": "tcp",
        "from_port": 22,
        "to_port": 22,
    }
    incident = await rig.act("ec2.revoke_ingress", params)

    first = await rig.verify(incident)

    assert stale.served >= 1
    assert first.status == "PENDING", first.detail
    stale.end()
    assert (await rig.verify(incident)).status == "PASSED"


async def test_the_previous_ecs_deployment_is_not_read_as_ours(
    aws: AwsClients, proxy: AwsProxy, proxied: AwsClients, unique: str
) -> None:
    """moto rolls a desiredCount-0 service out at once: the previous deployment is COMPLETED,
    and a stale DescribeServices shows it as primary right after UpdateService."""
    ecs = await aws.client("ecs")
    await ecs.create_cluster(clusterName=f"c-{unique}")
    await ecs.register_task_definition(
        family=f"td-{unique}", containerDefinitions=[{"name": "a", "image": "nginx", "memory": 64}]
    )
    await ecs.create_service(
        cluster=f"c-{unique}",
        serviceName=f"s-{unique}",
        taskDefinition=f"td-{unique}",
        desiredCount=0,
    )
    stale = proxy.stale_reads("DescribeServices", after="UpdateService", seconds=120)
    rig = Rig(proxied)
    params = {"cluster": f"c-{unique}", "service": f"s-{unique}"}
    incident = await rig.act("ecs.force_new_deployment", params)
    ours = incident.recovery_actions[0].result["deployment_id"]
    previous = incident.recovery_actions[0].result["previous_deployment_id"]
    assert ours and ours != previous

    first = await rig.verify(incident)

    assert stale.served >= 1
    assert first.status == "PENDING", first.detail
    assert previous in first.detail and ours in first.detail
    stale.end()
    done = await rig.verify(incident)
    assert done.status == "PASSED" and ours in done.detail
