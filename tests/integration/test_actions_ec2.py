"""EC2 instance actions against the moto server: state checked before acting, then verified.

moto changes states at once (stop -> `stopped`), so the bounded waits are exercised only by
`test_stop_start_resumes_a_stopped_instance`'s resumption, not by a real `stopping` phase.
"""

from __future__ import annotations

from typing import Any

from aiops_agent.actions.ec2 import STOP_START_TAG, StartInstances, StopStartInstances
from aiops_agent.actions.registry import CATALOG, ActionDeps, BoundCatalog, token_digest
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


async def test_start_in_another_region(aws: AwsClients, unique: str) -> None:
    ec2 = await aws.client("ec2", region="eu-west-1")
    got = await ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    iid = str(got["Instances"][0]["InstanceId"])
    await ec2.stop_instances(InstanceIds=[iid])
    action = _action(aws)
    params = {"instance_id": iid, "region": "eu-west-1"}

    assert not (await action.execute({"instance_id": iid}, "tok")).ok  # not in our region
    outcome = await action.execute(params, "tok")

    assert outcome.ok and outcome.result["started"] is True
    assert (await action.verify(params, outcome.result)).status == "PASSED"


# ---------------------------------------------------------------- ec2.stop_start_instances


def _stop_start(aws: AwsClients) -> Any:
    return BoundCatalog(CATALOG, ActionDeps(clients=aws)).get("ec2.stop_start_instances")


async def _tags(aws: AwsClients, iid: str) -> dict[str, str]:
    ec2 = await aws.client("ec2")
    resp = await ec2.describe_instances(InstanceIds=[iid])
    instance = resp["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


async def test_stop_start_cycles_a_running_instance_once(aws: AwsClients, unique: str) -> None:
    iid = await _instance(aws, unique)
    calls: list[str] = []
    counting = AwsClients(
        endpoint_url=aws.endpoint_url,
        max_attempts=1,
        on_call=lambda service, op, outcome: calls.append(op),
    )
    async with counting:
        action = StopStartInstances(ActionDeps(clients=counting))
        outcome = await action.execute({"instance_id": iid}, f"inc-{unique}:0")
        first_calls = list(calls)
        again = await action.execute({"instance_id": iid}, f"inc-{unique}:0")
        retry_calls = calls[len(first_calls) :]
        check = await action.verify({"instance_id": iid}, outcome.result)

    assert outcome.ok, outcome.detail
    assert outcome.result["stopped"] is True and outcome.result["started"] is True
    assert first_calls.count("StopInstances") == 1 and first_calls.count("StartInstances") == 1
    assert await _state(aws, iid) == "running"
    assert (await _tags(aws, iid))[STOP_START_TAG].endswith(" started")
    assert again.ok and "already stopped and started" in again.detail
    assert retry_calls == ["DescribeInstances"]  # the retry changed nothing
    assert check.status == "PASSED", check.detail


async def test_stop_start_resumes_a_stopped_instance(aws: AwsClients, unique: str) -> None:
    """A retry after the stop (crash, or a wait that ran out): start only, no second stop."""
    iid = await _instance(aws, unique)
    token = f"inc-{unique}:0"
    ec2 = await aws.client("ec2")
    await ec2.create_tags(
        Resources=[iid], Tags=[{"Key": STOP_START_TAG, "Value": f"{token_digest(token)} stop"}]
    )
    await ec2.stop_instances(InstanceIds=[iid])

    outcome = await _stop_start(aws).execute({"instance_id": iid}, token)

    assert outcome.ok, outcome.detail
    assert outcome.result == {
        "instance_id": iid,
        "previous_state": "stopped",
        "stopped": False,
        "started": True,
        "current_state": outcome.result.get("current_state"),
    }
    # What StartInstances reported for the instance (AWS: pending; moto starts it at once).
    assert outcome.result["current_state"] in {"pending", "running"}
    assert await _state(aws, iid) == "running"


async def test_stop_start_refuses_terminated_and_unknown(aws: AwsClients, unique: str) -> None:
    iid = await _instance(aws, unique)
    ec2 = await aws.client("ec2")
    await ec2.terminate_instances(InstanceIds=[iid])
    action = _stop_start(aws)

    terminated = await action.execute({"instance_id": iid}, "tok")
    unknown = await action.execute({"instance_id": "i-0123456789abcdef0"}, "tok")

    assert not terminated.ok and "terminated" in terminated.detail
    assert not unknown.ok and "not found" in unknown.detail
    assert STOP_START_TAG not in await _tags(aws, iid)
    assert (await action.verify({"instance_id": iid}, {})).status == "FAILED"


async def test_stop_start_dry_run_and_approval(aws: AwsClients) -> None:
    text = await _stop_start(aws).dry_run({"instance_id": "i-0123456789abcdef0"})
    assert text.startswith("would stop EC2 instance i-0123456789abcdef0")
    assert "then start" in text
    assert CATALOG.spec("ec2.stop_start_instances").requires_approval is True
    assert CATALOG.spec("ec2.start_instances").requires_approval is False
