"""EC2 recovery actions.

`ec2.start_instances` starts one stopped instance. EC2 has no `ClientToken` for StartInstances, so
the action reads the instance state first and only a `stopped` instance is started: running it
twice, or after someone else started the instance, is a no-op that reports success.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_delay, wait_fixed

from aiops_agent.actions.registry import CATALOG, BaseAction, error_code
from aiops_agent.domain.ports import CheckOutcome, StepOutcome

log = structlog.get_logger(__name__)

_NOT_FOUND = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
_GONE = frozenset({"shutting-down", "terminated"})
_UP = frozenset({"pending", "running"})
_CHECK_WAIT = frozenset({"initializing", "insufficient-data"})


class StartInstancesParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: str = Field(pattern=r"^i-[0-9a-f]{8,17}$", description="the instance to start")


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
    if state in _GONE or state in ("stopping", "stopped"):
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


@CATALOG.register("ec2.start_instances")
class StartInstances(BaseAction[StartInstancesParams]):
    resource_types = ("ec2",)
    description = "Start a stopped EC2 instance (no-op when it is already running)."
    permissions = ("ec2:DescribeInstanceStatus", "ec2:DescribeInstances", "ec2:StartInstances")
    params_model = StartInstancesParams

    stopping_wait_seconds: float = 30.0
    """How long `execute` waits for a `stopping` instance to reach `stopped` before giving up."""
    poll_seconds: float = 2.0

    async def _client(self) -> Any:
        return await self.deps.clients.client("ec2")

    async def _state(self, instance_id: str) -> str | None:
        ec2 = await self._client()
        try:
            resp = await ec2.describe_instances(InstanceIds=[instance_id])
        except ClientError as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise
        for reservation in resp.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if instance.get("InstanceId") == instance_id:
                    return str(instance["State"]["Name"])
        return None

    async def _state_after_stopping(self, instance_id: str) -> str | None:
        """The state once the instance has left `stopping`, or `stopping` after a bounded wait."""

        def last(rs: RetryCallState) -> str | None:
            return rs.outcome.result() if rs.outcome is not None else "stopping"

        retrying = AsyncRetrying(
            stop=stop_after_delay(self.stopping_wait_seconds),
            wait=wait_fixed(self.poll_seconds),
            retry=retry_if_result(lambda state: state == "stopping"),
            retry_error_callback=last,
        )
        async with asyncio.timeout(self.stopping_wait_seconds + self.poll_seconds + 30):
            state: str | None = await retrying(self._state, instance_id)
        return state

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        p = self.parse(params)
        iid = p.instance_id
        state = await self._state(iid)
        if state == "stopping":
            log.info("ec2.waiting_for_stopped", instance_id=iid)
            state = await self._state_after_stopping(iid)
        result: dict[str, Any] = {"instance_id": iid, "previous_state": state, "started": False}
        if state is None:
            return StepOutcome(False, f"instance {iid} not found; cannot start", result)
        if state in _UP:
            return StepOutcome(True, f"instance {iid} already {state}; nothing to do", result)
        if state in _GONE:
            return StepOutcome(False, f"instance {iid} is {state}; cannot start", result)
        if state != "stopped":
            return StepOutcome(False, f"instance {iid} is {state}; retry", result)
        ec2 = await self._client()
        try:
            resp = await ec2.start_instances(InstanceIds=[iid])
        except ClientError as exc:
            if error_code(exc) != "IncorrectInstanceState":
                raise
            # Raced with another start or stop: decide again on the state it is in now.
            now = await self._state(iid)
            result["previous_state"] = now
            if now in _UP:
                return StepOutcome(True, f"instance {iid} already {now}; nothing to do", result)
            return StepOutcome(False, f"instance {iid} is {now}; cannot start", result)
        changes = resp.get("StartingInstances", [])
        current = changes[0]["CurrentState"]["Name"] if changes else "pending"
        result.update(started=True, current_state=current)
        log.info("ec2.instance_started", instance_id=iid, current_state=current)
        return StepOutcome(True, f"started instance {iid} ({state} -> {current})", result)

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        p = self.parse(params)
        state = await self._state(p.instance_id)
        instance_status = system_status = None
        if state == "running":
            ec2 = await self._client()
            resp = await ec2.describe_instance_status(
                InstanceIds=[p.instance_id], IncludeAllInstances=True
            )
            for status in resp.get("InstanceStatuses", []):
                if status.get("InstanceId") == p.instance_id:
                    instance_status = _status(status.get("InstanceStatus"))
                    system_status = _status(status.get("SystemStatus"))
        return interpret_instance(state, instance_status, system_status)

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        p = self.parse(params)
        return f"would start EC2 instance {p.instance_id} if it is stopped (no-op if running)"
