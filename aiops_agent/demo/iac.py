"""The demo's stand-in for Terraform: the emulator's CodeBuild runs nothing.

In production `iac.restore` starts a CodeBuild build that runs `terraform apply`, which recreates
the resource (and tags an instance `aiops:restored-from=<old id>`). moto's CodeBuild reports every
build SUCCEEDED at once and runs no buildspec, so in the demo this task plays Terraform's part:
when an incident's recovery build has started, it recreates the resource on the emulator. The
agent's verification then checks the resource for real, exactly as it would on AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.scenarios import create_demo_function
from aiops_agent.domain.models import Incident, WorkflowState
from aiops_agent.domain.ports import IncidentStore

log = structlog.get_logger(__name__)

Recreate = Callable[[AwsClients, str], Awaitable[None]]


async def _ec2(clients: AwsClients, old_id: str) -> None:
    ec2 = await clients.client("ec2")
    image = (await ec2.describe_images(Owners=["amazon"]))["Images"][0]["ImageId"]
    await ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "aiops:restored-from", "Value": old_id}],
            }
        ],
    )


async def _dynamodb(clients: AwsClients, name: str) -> None:
    ddb = await clients.client("dynamodb")
    await ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


async def _s3(clients: AwsClients, name: str) -> None:
    s3 = await clients.client("s3")
    await s3.create_bucket(Bucket=name)


RECREATE: dict[str, Recreate] = {
    "ec2": _ec2,
    "lambda": create_demo_function,
    "dynamodb": _dynamodb,
    "s3": _s3,
}


def _builds_started(incident: Incident) -> list[tuple[str, str]]:
    targets = []
    for record in incident.recovery_actions:
        if record.action == "iac.restore" and record.status == "SUCCEEDED":
            params: dict[str, Any] = dict(incident.plan[record.step].params)
            targets.append((str(params["resource_type"]), str(params["resource_id"])))
    return targets


async def play_terraform(
    clients: AwsClients, store: IncidentStore, stop: asyncio.Event, period: float = 0.3
) -> None:
    """Until `stop`: recreate each resource whose recovery build has started, once."""
    done: set[tuple[str, str]] = set()
    while not stop.is_set():
        for incident in await store.list_incidents(state=WorkflowState.VERIFYING, limit=50):
            for target in _builds_started(incident):
                recreate = RECREATE.get(target[0])
                if target in done or recreate is None:
                    continue
                done.add(target)
                try:
                    await recreate(clients, target[1])
                    log.info("demo.terraform_applied", resource_type=target[0], id=target[1])
                except Exception as exc:
                    log.warning("demo.terraform_failed", target=target, error=repr(exc))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(period):
                await stop.wait()
