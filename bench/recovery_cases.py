"""The time-to-recovery benchmark's scenarios: each makes a resource on the emulator, breaks it,
and returns the events AWS would put on the bus for that change.

The demo's scenarios (demo/scenarios.py) are used as they are, and two more are the
benchmark's own:

- a world-open security group rule (a CloudTrail AuthorizeSecurityGroupIngress record);
- a person's stop whose CloudTrail record arrives `RECORD_AFTER_S` after the state change
  (EC2's state change is its own event; CloudTrail's copy of the call comes separately and
  later, best effort, with no documented bound): the record names the author, and the wait
  for one ends when it joins;
- an instance stopped by a system fault. AWS stops an instance on a scheduled retirement (its
  host failing) itself: no API caller, no CloudTrail record, and DescribeInstances says why in
  `StateReason` (`Server.ScheduledStop`, EC2 API reference, StateReason). moto's StopInstances
  always records a user's stop (`Client.UserInitiatedShutdown`), so the instance is stopped on
  the emulator and the agent's view of it goes through the test realism proxy
  (tests/aws_proxy.py), which reports the system's `StateReason` and `StateTransitionReason`
  while the instance is stopped, as AWS would. EventBridge carries the two state changes a stop
  makes (`stopping`, then `stopped`), which name no reason and no author, whoever stopped it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.scenarios import (
    SCENARIOS,
    cloudtrail_record,
    prepare_function,
    prepare_parameter,
)

ACCOUNT = "123456789012"
SYSTEM_STOP_CODE = "Server.ScheduledStop"
SYSTEM_STOP_MESSAGE = "Server.ScheduledStop: Stopped due to scheduled retirement"
"""What DescribeInstances says of an instance AWS stopped for a scheduled retirement: the code
(EC2 API reference, StateReason: "The instance was stopped due to a scheduled retirement") and
a message in EC2's `Code: text` form (as in `Client.UserInitiatedShutdown: User initiated
shutdown`). Its `StateTransitionReason` carries the code, not `User initiated (...)`."""
STOPPED_STATES = ("stopping", "stopped")

Act = Callable[[AwsClients, dict[str, str]], Awaitable[list[dict[str, Any]]]]
Prepare = Callable[[AwsClients], Awaitable[dict[str, str]]]


class StateReasons(Protocol):
    """What the agent's side of the emulator must offer: tests.aws_proxy.AwsProxy."""

    def state_reason(
        self,
        instance_id: str,
        *,
        code: str | None = None,
        message: str | None = None,
        transition_reason: str | None = None,
        states: Iterable[str] | None = None,
    ) -> Any: ...


RECORD_AFTER_S = 20.0
"""How long after the state change the person's CloudTrail record is put on the bus (an input
of the scenario: AWS documents no bound)."""


@dataclass(frozen=True)
class Case:
    """A scenario of the benchmark: the demo's, or one of its own."""

    name: str
    prepare: Prepare
    act: Act
    key: str
    """Which prepared value is the incident's resource id."""
    later: tuple[float, Act] | None = None
    """Events put on the bus this many seconds after the first ones (a CloudTrail record that
    follows the state change it explains)."""


def state_change(instance_id: str, state: str, region: str) -> dict[str, Any]:
    """An EC2 Instance State-change Notification as PutEvents takes it (EventBridge adds the
    envelope: id, time, account, region)."""
    return {
        "Source": "aws.ec2",
        "DetailType": "EC2 Instance State-change Notification",
        "Resources": [f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{instance_id}"],
        "Detail": json.dumps({"instance-id": instance_id, "state": state}),
    }


def system_stop(reasons: StateReasons) -> Act:
    """Stop the instance as AWS does on a scheduled retirement (see the module's docstring)."""

    async def act(clients: AwsClients, res: dict[str, str]) -> list[dict[str, Any]]:
        instance_id = res["instance_id"]
        # Before the stop: the agent must never see this stop as a user's.
        reasons.state_reason(
            instance_id,
            code=SYSTEM_STOP_CODE,
            message=SYSTEM_STOP_MESSAGE,
            transition_reason=SYSTEM_STOP_CODE,
            states=STOPPED_STATES,
        )
        ec2 = await clients.client("ec2")
        await ec2.stop_instances(InstanceIds=[instance_id])
        return [state_change(instance_id, s, clients.region) for s in STOPPED_STATES]

    return act


async def _prepare_group(clients: AwsClients) -> dict[str, str]:
    ec2 = await clients.client("ec2")
    made = await ec2.create_security_group(
        GroupName=f"bench-open-{time.monotonic_ns()}", Description="recovery benchmark"
    )
    return {"group_id": made["GroupId"]}


async def _open_group(clients: AwsClients, res: dict[str, str]) -> list[dict[str, Any]]:
    ec2 = await clients.client("ec2")
    permission = {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
    }
    await ec2.authorize_security_group_ingress(GroupId=res["group_id"], IpPermissions=[permission])
    params = {
        "groupId": res["group_id"],
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                }
            ]
        },
    }
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory",
            "accountId": ACCOUNT,
        },
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "AuthorizeSecurityGroupIngress",
        "awsRegion": clients.region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": params,
        "responseElements": None,
        "eventID": f"bench-{time.monotonic_ns()}",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    return [
        {
            "Source": "aws.ec2",
            "DetailType": "AWS API Call via CloudTrail",
            "Detail": json.dumps(detail),
        }
    ]


def _fresh(prepare: Callable[[AwsClients, str], Awaitable[dict[str, str]]], stem: str) -> Prepare:
    """A demo scenario's resource under a new name each round: a name used in an earlier round
    would be in its cooldown, and the demo's function and parameter names are fixed."""

    async def prepared(clients: AwsClients) -> dict[str, str]:
        return await prepare(clients, f"{stem}-{uuid.uuid4().hex[:8]}")

    return prepared


SYSTEM_STOP = "instance stopped by a system fault"
PERSON_STOP = "instance stopped by a person"
PERSON_STOP_RECORDED = "instance stopped by a person, its CloudTrail record 20 s later"


def person_stop_record(clients: AwsClients, res: dict[str, str]) -> Awaitable[list[dict[str, Any]]]:
    """CloudTrail's record of the person's StopInstances, naming them (not a trusted principal)."""

    async def record() -> list[dict[str, Any]]:
        params = {"instancesSet": {"items": [{"instanceId": res["instance_id"]}]}}
        return [cloudtrail_record("ec2", "StopInstances", params, clients.region)]

    return record()


def cases(reasons: StateReasons) -> list[Case]:
    """Every recovery the demo shows (not the trusted pipeline's stop, which is not recovered),
    a stop by a system fault, and a world-open security group rule. `reasons` is what the
    agent's DescribeInstances goes through. Instances are new in every round anyway."""
    demo = {s.title: s for s in SCENARIOS}
    stopped = demo["EC2 instance stopped by hand"]
    terminated = demo["EC2 instance terminated (CloudTrail call + state change: one incident)"]
    deleted = demo["Lambda function deleted"]
    tampered = demo["SSM parameter overwritten"]
    return [
        Case(PERSON_STOP, stopped.prepare, stopped.act, stopped.key),
        Case(
            PERSON_STOP_RECORDED,
            stopped.prepare,
            stopped.act,
            stopped.key,
            later=(RECORD_AFTER_S, person_stop_record),
        ),
        Case(SYSTEM_STOP, stopped.prepare, system_stop(reasons), stopped.key),
        Case("instance terminated", terminated.prepare, terminated.act, terminated.key),
        Case(
            "function deleted",
            _fresh(prepare_function, "bench-orders-api"),
            deleted.act,
            deleted.key,
        ),
        Case(
            "parameter tampered",
            _fresh(prepare_parameter, "/bench/payments/db-host"),
            tampered.act,
            tampered.key,
        ),
        Case("security group opened to the world", _prepare_group, _open_group, "group_id"),
    ]


def resource_type(case: Case) -> str:
    return {"function_name": "lambda", "parameter": "ssm"}.get(case.key, "ec2")
