"""ECS: replace an impaired service's tasks with a forced new deployment (requires approval).

UpdateService has no client token, and every call starts another deployment. So before forcing
one, `ecs.force_new_deployment` tags the service `aiops:force-deployment = "<token digest>
<primary deployment id>"`; re-executed with the same token, it finds the tag and, if the primary
deployment has changed since, returns ok without deploying again. A service that cannot be tagged
(an old short-ARN service) is deployed without that marker, and the result says so.

Verification reads the PRIMARY deployment: `rolloutState` COMPLETED passes, FAILED (the deployment
circuit breaker gave up) fails, IN_PROGRESS waits; where ECS reports no rollout state, running
tasks equal to desired with the old deployments gone passes. It must be the deployment this
action created: DescribeServices is eventually consistent, and a read that still shows the
previous (COMPLETED) deployment as primary is not a pass but a wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from aiops_agent.actions.registry import CATALOG, BaseAction, Region, error_code, token_digest
from aiops_agent.domain.ports import CheckOutcome, StepOutcome

log = structlog.get_logger(__name__)

FORCE_DEPLOYMENT_TAG = "aiops:force-deployment"
_GONE = frozenset({"ClusterNotFoundException", "ServiceNotFoundException"})
_UNTAGGABLE = frozenset({"InvalidParameterException", "AccessDeniedException"})


class ForceNewDeploymentParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster: str = Field(min_length=1, max_length=2048, description="the cluster's name or ARN")
    service: str = Field(min_length=1, max_length=2048, description="the service's name or ARN")
    region: Region = None


def primary_deployment(service: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for deployment in service.get("deployments", []):
        if deployment.get("status") == "PRIMARY":
            return dict(deployment)
    return None


def interpret_service(
    service: Mapping[str, Any] | None,
    ours: str | None = None,
    previous: str | None = None,
) -> CheckOutcome:
    """Whether the service's newest deployment has rolled out. Pure: each case is unit-tested.

    `ours`: the deployment the action created; `previous`: the primary before it. A primary that
    is still `previous` is a read from before the action (PENDING), never its result.
    """
    status = service.get("status") if service else None
    checks: list[dict[str, Any]] = [
        {"check": "service_status", "expected": "ACTIVE", "actual": status or "not-found"}
    ]
    if service is None or status != "ACTIVE":
        return CheckOutcome("FAILED", f"service is {status or 'not found'}", checks)
    primary = primary_deployment(service)
    if primary is None:
        checks.append({"check": "primary_deployment", "expected": "present", "actual": "absent"})
        return CheckOutcome("FAILED", "service has no primary ECS deployment", checks)
    primary_id = str(primary.get("id", "?"))
    if ours and primary_id != ours and primary_id == previous:
        checks.append({"check": "primary_deployment", "expected": ours, "actual": primary_id})
        return CheckOutcome(
            "PENDING",
            f"the service still shows deployment {primary_id} as primary, from before ours "
            f"({ours}): the read may predate the update",
            checks,
        )
    rollout = primary.get("rolloutState")
    desired = int(primary.get("desiredCount", service.get("desiredCount", 0)))
    running = int(primary.get("runningCount", 0))
    deployments = len(service.get("deployments", []))
    checks.append({"check": "rollout_state", "expected": "COMPLETED", "actual": rollout})
    checks.append({"check": "running_count", "expected": desired, "actual": running})
    where = f"deployment {primary_id}"
    if ours and primary_id != ours:
        where += f" (which replaced ours, {ours})"
    if rollout == "COMPLETED":
        return CheckOutcome("PASSED", f"{where} completed ({running}/{desired} running)", checks)
    if rollout == "FAILED":
        reason = primary.get("rolloutStateReason") or "rollout failed"
        return CheckOutcome("FAILED", f"{where} failed: {reason}", checks)
    if rollout is None and running == desired and deployments == 1:
        return CheckOutcome("PASSED", f"{where}: {running}/{desired} tasks running", checks)
    failed = int(primary.get("failedTasks", 0))
    extra = f", {failed} failed tasks" if failed else ""
    return CheckOutcome(
        "PENDING", f"{where} in progress ({running}/{desired} running{extra})", checks
    )


@CATALOG.register("ecs.force_new_deployment")
class ForceNewDeployment(BaseAction[ForceNewDeploymentParams]):
    resource_types = ("ecs",)
    description = "Force a new deployment of an impaired ECS service (requires approval)."
    permissions = ("ecs:DescribeServices", "ecs:TagResource", "ecs:UpdateService")
    requires_approval = True
    params_model = ForceNewDeploymentParams

    async def _service(self, ecs: Any, p: ForceNewDeploymentParams) -> dict[str, Any] | None:
        try:
            resp = await ecs.describe_services(
                cluster=p.cluster, services=[p.service], include=["TAGS"]
            )
        except ClientError as exc:
            if error_code(exc) in _GONE:
                return None
            raise
        services = resp.get("services", [])
        return dict(services[0]) if services else None

    async def _mark(self, ecs: Any, arn: str, value: str) -> bool:
        try:
            await ecs.tag_resource(
                resourceArn=arn, tags=[{"key": FORCE_DEPLOYMENT_TAG, "value": value}]
            )
        except ClientError as exc:
            if error_code(exc) not in _UNTAGGABLE:
                raise
            log.warning("ecs.untaggable_service", service_arn=arn, code=error_code(exc))
            return False
        return True

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        p = self.parse(params)
        ecs = await self.deps.clients.client("ecs", region=p.region)
        result: dict[str, Any] = {"cluster": p.cluster, "service": p.service, "forced": False}
        service = await self._service(ecs, p)
        if service is None or service.get("status") != "ACTIVE":
            state = service.get("status") if service else "not found"
            return StepOutcome(False, f"service {p.service} is {state}; cannot deploy", result)
        primary = primary_deployment(service) or {}
        before = str(primary.get("id", "none"))
        result["previous_deployment_id"] = before
        digest = token_digest(idempotency_token)
        tags = {t.get("key"): t.get("value") for t in service.get("tags", [])}
        marker = str(tags.get(FORCE_DEPLOYMENT_TAG) or "")
        if marker.startswith(f"{digest} "):
            recorded = marker.removeprefix(f"{digest} ")
            result["previous_deployment_id"] = recorded
            if before != recorded:
                result["deployment_id"] = before
                return StepOutcome(
                    True, f"deployment {before} of {p.service} already forced", result
                )
            result["marked"] = True
        else:
            result["marked"] = await self._mark(ecs, service["serviceArn"], f"{digest} {before}")
        try:
            resp = await ecs.update_service(
                cluster=p.cluster, service=p.service, forceNewDeployment=True
            )
        except ClientError as exc:
            code = error_code(exc)
            if code not in _GONE and code != "ServiceNotActiveException":
                raise
            return StepOutcome(False, f"cannot deploy {p.service}: {code}", result)
        new = primary_deployment(resp.get("service", {})) or {}
        result.update(forced=True, deployment_id=new.get("id"))
        log.info("ecs.deployment_forced", service=p.service, deployment_id=new.get("id"))
        return StepOutcome(
            True, f"forced deployment {new.get('id')} of {p.service} (was {before})", result
        )

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        p = self.parse(params)
        ecs = await self.deps.clients.client("ecs", region=p.region)
        ours, previous = result.get("deployment_id"), result.get("previous_deployment_id")
        return interpret_service(
            await self._service(ecs, p),
            ours if isinstance(ours, str) else None,
            previous if isinstance(previous, str) else None,
        )

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        p = self.parse(params)
        return (
            f"would force a new deployment of ECS service {p.service} in cluster {p.cluster}, "
            "replacing its tasks (after approval)"
        )
