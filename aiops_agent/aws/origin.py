"""Who stopped an EC2 instance, as the instance itself says (DescribeInstances `StateReason`).

An EC2 Instance State-change Notification names no author. A stop a person or a pipeline made
has `Client.UserInitiatedShutdown`; a host failure, a scheduled retirement, a Spot interruption
or the instance's own shutdown has a system code (intake/attribution.py). The planner waits for
a CloudTrail record only when someone may be the author.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from botocore.exceptions import ClientError

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.attribution import Origin, state_reason_origin

log = structlog.get_logger(__name__)

CALL_TIMEOUT_S = 10.0


class InstanceOrigin:
    """Implements the planner's `ChangeOrigin` port for EC2 instance state changes."""

    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    async def origin(self, event: NormalizedEvent) -> tuple[Origin, str]:
        """(`system` | `user` | `unknown`, what the instance says)."""
        if event.resource_type != "ec2" or not event.resource_id.startswith("i-"):
            return "unknown", "not an instance"
        try:
            ec2 = await self._clients.client("ec2", region=event.region or None)
            async with asyncio.timeout(CALL_TIMEOUT_S):
                resp = await ec2.describe_instances(InstanceIds=[event.resource_id])
        except (ClientError, TimeoutError) as exc:
            log.warning("attribution.state_reason_unread", error=repr(exc)[:200])
            return "unknown", "DescribeInstances failed"
        instance = _find(resp, event.resource_id)
        if instance is None:
            return "unknown", "instance not found"
        reason = instance.get("StateReason") or {}
        code = reason.get("Code")
        transition = instance.get("StateTransitionReason")
        said = str(reason.get("Message") or code or transition or "no state reason")
        return state_reason_origin(code, transition), said


def _find(resp: dict[str, Any], instance_id: str) -> dict[str, Any] | None:
    for reservation in resp.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            if instance.get("InstanceId") == instance_id:
                return dict(instance)
    return None
