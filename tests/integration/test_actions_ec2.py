"""`ec2.start_instances` against the moto server: state checked before acting, then verified."""

from __future__ import annotations

from typing import Any

from aiops_agent.actions.ec2 import StartInstances
from aiops_agent.actions.registry import CATALOG, ActionDeps, BoundCatalog
from aiops_agent.aws.clients import AwsClients


async def _instance(aws: AwsClients, unique: str) -> str:
    ec2 = await aws.client("ec2")
    resp = await ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"t-{unique}"}]}
        ],
    )
    return str(resp["Instances"][0]["InstanceId"])


async def _state(aws: AwsClients, iid: str) -> str:
    ec2 = await aws.client("ec2")
    resp = await ec2.describe_instances(InstanceIds=[iid])
    return str(resp["Reservations"][0]["Instances"][0]["State"]["Name"])


def _action(aws: AwsClients) -> Any:
    return BoundCatalog(CATALOG, ActionDeps(clients=aws)).get("ec2.start_instances")


async def test_starts_a_stopped_instance_and_verifies(aws: AwsClients, unique: str) -> None:
    iid = await _instance(aws, unique)
    ec2 = await aws.client("ec2")
    await ec2.stop_instances(InstanceIds=[iid])
    assert await _state(aws, iid) == "stopped"
    action = _action(aws)
    before = await action.verify({"instance_id": iid}, {})
    assert before.status == "FAILED"  # a stopped instance fails verification

    outcome = await action.execute({"instance_id": iid}, "tok-1")

    assert outcome.ok, outcome.detail
    assert outcome.result["started"] is True
    assert outcome.result["previous_state"] == "stopped"
    assert await _state(aws, iid) in ("pending", "running")
    check = await action.verify({"instance_id": iid}, outcome.result)
    assert check.status == "PASSED", check.detail
    assert {c["check"] for c in check.checks} >= {"instance_state"}
    assert check.checks[0]["actual"] == "running"


async def test_already_running_is_ok_without_a_start(aws: AwsClients, unique: str) -> None:
    iid = await _instance(aws, unique)
    calls: list[str] = []
    counting = AwsClients(
        endpoint_url=aws.endpoint_url,
        max_attempts=1,
        on_call=lambda service, op, outcome: calls.append(op),
    )
    async with counting:
        action = StartInstances(ActionDeps(clients=counting))
        outcome = await action.execute({"instance_id": iid}, "tok-2")
    assert outcome.ok
    assert outcome.result["started"] is False
    assert "already" in outcome.detail
    assert "StartInstances" not in calls
    assert calls == ["DescribeInstances"]


async def test_terminated_instance_cannot_be_started(aws: AwsClients, unique: str) -> None:
    iid = await _instance(aws, unique)
    ec2 = await aws.client("ec2")
    await ec2.terminate_instances(InstanceIds=[iid])
    action = _action(aws)

    outcome = await action.execute({"instance_id": iid}, "tok-3")

    assert not outcome.ok
    assert "terminated" in outcome.detail and "cannot start" in outcome.detail
    assert await _state(aws, iid) == "terminated"  # moto would have started it: we did not ask
    assert (await action.verify({"instance_id": iid}, {})).status == "FAILED"


async def test_unknown_instance_is_not_ok(aws: AwsClients) -> None:
    action = _action(aws)
    outcome = await action.execute({"instance_id": "i-0123456789abcdef0"}, "tok-4")
    assert not outcome.ok
    assert "not found" in outcome.detail
    check = await action.verify({"instance_id": "i-0123456789abcdef0"}, {})
    assert check.status == "FAILED"


async def test_dry_run_names_the_instance(aws: AwsClients) -> None:
    text = await _action(aws).dry_run({"instance_id": "i-0123456789abcdef0"})
    assert "i-0123456789abcdef0" in text and text.startswith("would start")
