"""The demo's scenarios: a real change on the emulator, and the events AWS would emit for it.

moto does not emit EventBridge events for API calls, so each scenario puts the events that
EventBridge would deliver (an EC2 state change, a CloudTrail API call) after making the change.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from aiops_agent.aws.clients import AwsClients

ACCOUNT = "123456789012"
DEMO_USER = f"arn:aws:iam::{ACCOUNT}:user/mallory"
DEMO_PIPELINE = f"arn:aws:iam::{ACCOUNT}:role/demo-deploy-pipeline"
"""The demo's trusted principal (AIOPS_TRUSTED_PRINCIPALS): its changes are intended."""

Prepare = Callable[[AwsClients], Awaitable[dict[str, str]]]
Act = Callable[[AwsClients, dict[str, str]], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class Scenario:
    title: str
    prepare: Prepare
    act: Act
    key: str
    """Which prepared value is the incident's resource id."""
    expect: frozenset[str]

    def resource_id(self, resources: dict[str, str]) -> str:
        return resources[self.key]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _state_change(instance_id: str, state: str, region: str) -> dict[str, Any]:
    return {
        "Source": "aws.ec2",
        "DetailType": "EC2 Instance State-change Notification",
        "Resources": [f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{instance_id}"],
        "Detail": json.dumps({"instance-id": instance_id, "state": state}),
    }


def cloudtrail_record(
    service: str, name: str, params: dict[str, Any], region: str, principal: str = DEMO_USER
) -> dict[str, Any]:
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser" if ":user/" in principal else "AssumedRole",
            "arn": principal,
            "accountId": ACCOUNT,
        },
        "eventTime": _now(),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": params,
        "responseElements": None,
        "eventID": str(uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    return {
        "Source": f"aws.{service}",
        "DetailType": "AWS API Call via CloudTrail",
        "Detail": json.dumps(detail),
    }


async def _run_instance(clients: AwsClients, name: str) -> str:
    ec2 = await clients.client("ec2")
    images = await ec2.describe_images(Owners=["amazon"])
    image_id = images["Images"][0]["ImageId"]
    got = await ec2.run_instances(
        ImageId=image_id,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    )
    return str(got["Instances"][0]["InstanceId"])


# ---------------------------------------------------------------- EC2 stopped


async def _prepare_stopped(clients: AwsClients) -> dict[str, str]:
    return {"instance_id": await _run_instance(clients, "demo-web-1")}


async def _act_stopped(clients: AwsClients, res: dict[str, str]) -> list[dict[str, Any]]:
    ec2 = await clients.client("ec2")
    await ec2.stop_instances(InstanceIds=[res["instance_id"]])
    return [_state_change(res["instance_id"], "stopped", clients.region)]


# ---------------------------------------------------------------- EC2 stopped by the pipeline


async def _prepare_pipeline_stop(clients: AwsClients) -> dict[str, str]:
    return {"instance_id": await _run_instance(clients, "demo-canary-1")}


async def _act_pipeline_stop(clients: AwsClients, res: dict[str, str]) -> list[dict[str, Any]]:
    """The deploy pipeline stops a canary: EC2 reports it at once and without an author, then
    CloudTrail names the pipeline's role. The agent waits for the name and leaves it stopped."""
    ec2 = await clients.client("ec2")
    instance_id = res["instance_id"]
    await ec2.stop_instances(InstanceIds=[instance_id])
    call = cloudtrail_record(
        "ec2",
        "StopInstances",
        {"instancesSet": {"items": [{"instanceId": instance_id}]}},
        clients.region,
        principal=DEMO_PIPELINE,
    )
    return [_state_change(instance_id, "stopped", clients.region), call]


# ---------------------------------------------------------------- EC2 terminated


async def _prepare_terminated(clients: AwsClients) -> dict[str, str]:
    return {"instance_id": await _run_instance(clients, "demo-worker-1")}


async def _act_terminated(clients: AwsClients, res: dict[str, str]) -> list[dict[str, Any]]:
    ec2 = await clients.client("ec2")
    instance_id = res["instance_id"]
    await ec2.terminate_instances(InstanceIds=[instance_id])
    call = cloudtrail_record(
        "ec2",
        "TerminateInstances",
        {"instancesSet": {"items": [{"instanceId": instance_id}]}},
        clients.region,
    )
    return [call, _state_change(instance_id, "terminated", clients.region)]


# ---------------------------------------------------------------- Lambda deleted


LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", source)
    return buffer.getvalue()


async def create_demo_function(clients: AwsClients, name: str) -> None:
    """A small Lambda function and its role `<name>-role` (found if it exists)."""
    iam = await clients.client("iam")
    lam = await clients.client("lambda")
    role_name = f"{name}-role"[:64]
    try:
        role = await iam.get_role(RoleName=role_name)
    except iam.exceptions.NoSuchEntityException:
        role = await iam.create_role(
            RoleName=role_name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
        )
    await lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="handler.main",
        Code={"ZipFile": _zip("def main(event, context):\n    return {'ok': True}\n")},
    )


async def prepare_function(clients: AwsClients, name: str) -> dict[str, str]:
    await create_demo_function(clients, name)
    return {"function_name": name}


async def _prepare_lambda(clients: AwsClients) -> dict[str, str]:
    return await prepare_function(clients, "demo-orders-api")


async def _act_lambda(clients: AwsClients, res: dict[str, str]) -> list[dict[str, Any]]:
    lam = await clients.client("lambda")
    await lam.delete_function(FunctionName=res["function_name"])
    return [
        cloudtrail_record(
            "lambda",
            "DeleteFunction20150331",
            {"functionName": res["function_name"]},
            clients.region,
        )
    ]


# ---------------------------------------------------------------- SSM parameter tampered


async def _prepare_ssm(clients: AwsClients) -> dict[str, str]:
    return await prepare_parameter(clients, "/demo/payments/db-host")


async def prepare_parameter(clients: AwsClients, name: str) -> dict[str, str]:
    ssm = await clients.client("ssm")
    await ssm.put_parameter(
        Name=name, Value="db.internal.example:5432", Type="String", Overwrite=True
    )
    return {"parameter": name}


async def _act_ssm(clients: AwsClients, res: dict[str, str]) -> list[dict[str, Any]]:
    ssm = await clients.client("ssm")
    name = res["parameter"]
    await ssm.put_parameter(Name=name, Value="evil.example.net:5432", Type="String", Overwrite=True)
    return [
        cloudtrail_record(
            "ssm",
            "PutParameter",
            {"name": name, "type": "String", "overwrite": True},
            clients.region,
        )
    ]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "EC2 instance stopped by hand",
        _prepare_stopped,
        _act_stopped,
        "instance_id",
        frozenset({"COMPLETED"}),
    ),
    Scenario(
        "EC2 instance stopped by the trusted deploy pipeline (left stopped)",
        _prepare_pipeline_stop,
        _act_pipeline_stop,
        "instance_id",
        frozenset({"IGNORED"}),
    ),
    Scenario(
        "EC2 instance terminated (CloudTrail call + state change: one incident)",
        _prepare_terminated,
        _act_terminated,
        "instance_id",
        frozenset({"COMPLETED"}),
    ),
    Scenario(
        "Lambda function deleted",
        _prepare_lambda,
        _act_lambda,
        "function_name",
        frozenset({"COMPLETED"}),
    ),
    Scenario(
        "SSM parameter overwritten",
        _prepare_ssm,
        _act_ssm,
        "parameter",
        frozenset({"COMPLETED"}),
    ),
)
