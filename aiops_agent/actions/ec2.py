"""EC2 instance actions: start a stopped instance; stop and start one that AWS will retire.

EC2 has no `ClientToken` for StartInstances or StopInstances, so both actions read the instance
first and act on its state. `ec2.start_instances` only starts a `stopped` instance: running it
twice, or after someone else started the instance, is a no-op that reports success.

`ec2.stop_start_instances` (AWS Health scheduled retirement: a stop and a start move the instance
to healthy hardware) cannot decide from the state alone, because the instance is `running` both
before and after. It marks the instance with the tag `aiops:stop-start = "<token digest> stop"`
before stopping and `"<token digest> started"` once started: re-executed with the same token, it
resumes where it was (starts a stopped instance, waits for a stopping one) or does nothing.
A crash between the start and the second tag costs one more stop/start cycle, never a lost start.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import structlog
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from aiops_agent.actions.instances import (
    GONE,
    UP,
    check_instance,
    describe_instance,
    interpret_instance,
    wait_while,
)
from aiops_agent.actions.registry import CATALOG, BaseAction, Region, error_code, token_digest
from aiops_agent.domain.ports import CheckOutcome, StepOutcome

__all__ = ["StartInstances", "StopStartInstances", "interpret_instance"]

log = structlog.get_logger(__name__)

STOP_START_TAG = "aiops:stop-start"
"""The tag `ec2.stop_start_instances` keeps its progress in: `"<token digest> stop|started"`."""


class InstanceParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: str = Field(pattern=r"^i-[0-9a-f]{8,17}$", description="the instance")
    region: Region = None


StartInstancesParams = InstanceParams
StopStartInstancesParams = InstanceParams


class _InstanceAction(BaseAction[InstanceParams]):
    resource_types = ("ec2",)
    params_model = InstanceParams

    poll_seconds: float = 2.0

    async def _client(self, region: str | None) -> Any:
        return await self.deps.clients.client("ec2", region=region)

    async def _state(self, ec2: Any, instance_id: str) -> str | None:
        view = await describe_instance(ec2, instance_id)
        return view.state if view else None

    async def _wait_while(
        self, ec2: Any, instance_id: str, states: Collection[str], seconds: float
    ) -> str | None:
        log.info("ec2.waiting", instance_id=instance_id, states=sorted(states))
        return await wait_while(
            lambda: self._state(ec2, instance_id), states, seconds, self.poll_seconds
        )

    async def _start(self, ec2: Any, iid: str, result: dict[str, Any]) -> StepOutcome | None:
        """Start a stopped instance; an outcome if a race left it in another state, else None."""
        try:
            resp = await ec2.start_instances(InstanceIds=[iid])
        except ClientError as exc:
            if error_code(exc) != "IncorrectInstanceState":
                raise
            # Raced with another start or stop: decide again on the state it is in now.
            now = await self._state(ec2, iid)
            result["current_state"] = now
            if now in UP:
                return StepOutcome(True, f"instance {iid} already {now}; nothing to do", result)
            return StepOutcome(False, f"instance {iid} is {now}; cannot start", result)
        changes = resp.get("StartingInstances", [])
        current = changes[0]["CurrentState"]["Name"] if changes else "pending"
        result.update(started=True, current_state=current)
        log.info("ec2.instance_started", instance_id=iid, current_state=current)
        return None

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        p = self.parse(params)
        return await check_instance(await self._client(p.region), p.instance_id)


@CATALOG.register("ec2.start_instances")
class StartInstances(_InstanceAction):
    description = "Start a stopped EC2 instance (no-op when it is already running)."
    permissions = ("ec2:DescribeInstanceStatus", "ec2:DescribeInstances", "ec2:StartInstances")

    stopping_wait_seconds: float = 30.0
    """How long `execute` waits for a `stopping` instance to reach `stopped` before giving up."""

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        p = self.parse(params)
        iid = p.instance_id
        ec2 = await self._client(p.region)
        state = await self._state(ec2, iid)
        if state == "stopping":
            state = await self._wait_while(ec2, iid, {"stopping"}, self.stopping_wait_seconds)
        result: dict[str, Any] = {"instance_id": iid, "previous_state": state, "started": False}
        if state is None:
            return StepOutcome(False, f"instance {iid} not found; cannot start", result)
        if state in UP:
            return StepOutcome(True, f"instance {iid} already {state}; nothing to do", result)
        if state in GONE:
            return StepOutcome(False, f"instance {iid} is {state}; cannot start", result)
        if state != "stopped":
            return StepOutcome(False, f"instance {iid} is {state}; retry", result)
        raced = await self._start(ec2, iid, result)
        if raced is not None:
            result["previous_state"] = result.pop("current_state")
            return raced
        return StepOutcome(
            True, f"started instance {iid} ({state} -> {result['current_state']})", result
        )

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        p = self.parse(params)
        return f"would start EC2 instance {p.instance_id} if it is stopped (no-op if running)"


@CATALOG.register("ec2.stop_start_instances")
class StopStartInstances(_InstanceAction):
    description = (
        "Stop and start an EC2 instance scheduled for retirement, so that it moves to healthy "
        "hardware (requires approval)."
    )
    permissions = (
        "ec2:CreateTags",
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeInstances",
        "ec2:StartInstances",
        "ec2:StopInstances",
    )
    requires_approval = True

    stop_wait_seconds: float = 30.0
    """How long `execute` waits for `stopped`; past it the step fails and a retry resumes."""

    async def _mark(self, ec2: Any, iid: str, value: str) -> None:
        await ec2.create_tags(Resources=[iid], Tags=[{"Key": STOP_START_TAG, "Value": value}])

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        p = self.parse(params)
        iid = p.instance_id
        digest = token_digest(idempotency_token)
        ec2 = await self._client(p.region)
        view = await describe_instance(ec2, iid)
        state = view.state if view else None
        result: dict[str, Any] = {
            "instance_id": iid,
            "previous_state": state,
            "stopped": False,
            "started": False,
        }
        if view is None:
            return StepOutcome(False, f"instance {iid} not found; cannot stop/start", result)
        marker = view.tags.get(STOP_START_TAG)
        if marker == f"{digest} started":
            return StepOutcome(True, f"instance {iid} already stopped and started", result)
        if view.state in GONE:
            return StepOutcome(False, f"instance {iid} is {view.state}; cannot stop/start", result)
        if marker != f"{digest} stop":
            await self._mark(ec2, iid, f"{digest} stop")
        if state == "pending":
            state = await self._wait_while(ec2, iid, {"pending"}, self.stop_wait_seconds)
        if state == "running":
            await ec2.stop_instances(InstanceIds=[iid])
            result["stopped"] = True
            log.info("ec2.instance_stopping", instance_id=iid)
            state = await self._state(ec2, iid)
        if state == "stopping":
            state = await self._wait_while(ec2, iid, {"stopping"}, self.stop_wait_seconds)
        if state != "stopped":
            return StepOutcome(
                False, f"instance {iid} is {state} after waiting; a retry resumes", result
            )
        raced = await self._start(ec2, iid, result)
        if raced is not None and not raced.ok:
            return raced
        # Started by us, or by someone else since it stopped: the cycle is complete either way.
        await self._mark(ec2, iid, f"{digest} started")
        if raced is not None:
            return raced
        return StepOutcome(
            True, f"stopped and started instance {iid} (now {result['current_state']})", result
        )

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        p = self.parse(params)
        return (
            f"would stop EC2 instance {p.instance_id} (if running), wait up to "
            f"{self.stop_wait_seconds:g} s for it to stop, then start it on new hardware"
        )
