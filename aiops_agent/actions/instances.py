"""EC2 instance state, read and judged: shared by the EC2 actions and the IaC restore's checks.

Kept apart from the action modules so that `verifiers` can use it without importing an action
module while the registry is still loading the built-in catalog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_delay, wait_fixed

from aiops_agent.actions.common import error_code
from aiops_agent.domain.ports import CheckOutcome

NOT_FOUND = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
GONE = frozenset({"shutting-down", "terminated"})
UP = frozenset({"pending", "running"})
_CHECK_WAIT = frozenset({"initializing", "insufficient-data"})


@dataclass(frozen=True)
class InstanceView:
    state: str
    tags: Mapping[str, str] = field(default_factory=dict)


def _status(value: Mapping[str, Any] | None) -> str | None:
    """A status check's status, or None where EC2 reports none (`not-applicable`)."""
    status = (value or {}).get("Status")
    return None if status in (None, "not-applicable") else str(status)


def interpret_instance(
    state: str | None, instance_status: str | None = None, system_status: str | None = None
) -> CheckOutcome:
    """Whether a started instance is up: its state, then its status checks where reported.

    Pure, so every combination is unit-tested; `verify` only gathers the inputs.
    """
    checks: list[dict[str, Any]] = [
        {"check": "instance_state", "expected": "running", "actual": state or "not-found"}
    ]
    if state is None:
        return CheckOutcome("FAILED", "instance not found", checks)
    if state in GONE or state in ("stopping", "stopped"):
        return CheckOutcome("FAILED", f"instance is {state}", checks)
    if state == "pending":
        return CheckOutcome("PENDING", "instance is pending", checks)
    if state != "running":
        return CheckOutcome("PENDING", f"instance is {state}", checks)
    reported = {"instance_status": instance_status, "system_status": system_status}
    for name, status in reported.items():
        if status is not None:
            checks.append({"check": name, "expected": "ok", "actual": status})
    statuses = [s for s in reported.values() if s is not None]
    if "impaired" in statuses:
        return CheckOutcome("FAILED", "instance is running but a status check is impaired", checks)
    if any(s in _CHECK_WAIT for s in statuses):
        return CheckOutcome("PENDING", "instance is running; status checks initializing", checks)
    suffix = "; status checks ok" if statuses else ""
    return CheckOutcome("PASSED", f"instance is running{suffix}", checks)


async def describe_instance(ec2: Any, instance_id: str) -> InstanceView | None:
    """The instance's state and tags, or None if EC2 does not know it."""
    try:
        resp = await ec2.describe_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise
    for reservation in resp.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            if instance.get("InstanceId") == instance_id:
                tags = {t["Key"]: t.get("Value", "") for t in instance.get("Tags", [])}
                return InstanceView(str(instance["State"]["Name"]), tags)
    return None


async def check_instance(ec2: Any, instance_id: str) -> CheckOutcome:
    """The post-condition of an instance brought up: running, and status checks ok if reported."""
    view = await describe_instance(ec2, instance_id)
    state = view.state if view else None
    instance_status = system_status = None
    if state == "running":
        resp = await ec2.describe_instance_status(
            InstanceIds=[instance_id], IncludeAllInstances=True
        )
        for status in resp.get("InstanceStatuses", []):
            if status.get("InstanceId") == instance_id:
                instance_status = _status(status.get("InstanceStatus"))
                system_status = _status(status.get("SystemStatus"))
    return interpret_instance(state, instance_status, system_status)


async def wait_while(
    probe: Callable[[], Coroutine[Any, Any, str | None]],
    states: Collection[str],
    seconds: float,
    poll_seconds: float,
) -> str | None:
    """Poll `probe` while it returns one of `states`, for at most `seconds`; the last state."""
    waiting = frozenset(states)

    def last(rs: RetryCallState) -> str | None:
        return rs.outcome.result() if rs.outcome is not None else None

    retrying = AsyncRetrying(
        stop=stop_after_delay(seconds),
        wait=wait_fixed(poll_seconds),
        retry=retry_if_result(lambda state: state in waiting),
        retry_error_callback=last,
    )
    async with asyncio.timeout(seconds + poll_seconds + 30):
        state: str | None = await retrying(probe)
    return state
