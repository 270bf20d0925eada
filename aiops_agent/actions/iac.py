"""Infrastructure-as-code recovery: re-apply the declared state of a resource through CodeBuild.

`iac.restore` starts a build of the configured recovery project (settings.codebuild_project) with
the resource and the incident's token in its environment; the project's buildspec runs the
`terraform apply` (or CloudFormation deploy) that recreates what was deleted or reverts what was
changed. CodeBuild honours its `idempotencyToken` for 5 minutes only, so a step resumed after a
longer outage would start a second `terraform apply`: before starting, the action looks for its
own build among the project's newest (ListBuildsForProject, BatchGetBuilds: the build whose
`AIOPS_INCIDENT_TOKEN` is this incident's token) and follows that one instead.

`verify` follows the build (running: PENDING; FAILED, FAULT, STOPPED, TIMED_OUT: FAILED) and, once
it SUCCEEDED, checks the resource itself (see `verifiers`): the function Active, the table ACTIVE,
the bucket and the parameter present, the replacement instance running. `checks` lists both.
A build still running when verification is about to give up (`ActionDeps.verify_timeout_seconds`,
less a margin) is stopped with StopBuild and reported so: a build left running unwatched (its
default timeout is 60 minutes) would go on changing the account after the incident closed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops_agent.actions.registry import CATALOG, BaseAction, Region, error_code
from aiops_agent.actions.verifiers import VERIFY_PERMISSIONS, merge, verify_resource
from aiops_agent.domain.ports import CheckOutcome, StepOutcome

log = structlog.get_logger(__name__)

IAC_RESOURCE_TYPES: tuple[str, ...] = ("ec2", "lambda", "dynamodb", "s3", "ssm")
"""The resource types whose declared state the recovery project knows how to re-apply."""

MAX_TOKEN_LENGTH = 64
"""CodeBuild's limit on `idempotencyToken`."""

_FINAL_FAILURES = frozenset({"FAILED", "FAULT", "STOPPED", "TIMED_OUT"})
TOKEN_VARIABLE = "AIOPS_INCIDENT_TOKEN"
OWN_BUILD_LOOKBACK = 100
"""How many of the project's newest builds are searched for this incident's own (one page)."""

_PERMANENT_START_ERRORS = frozenset(
    {"ResourceNotFoundException", "InvalidInputException", "AccountLimitExceededException"}
)


class IacRestoreParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    resource_type: str = Field(description="the resource's service short name, as in its ARN")
    resource_id: str = Field(min_length=1, max_length=1024, description="the resource's name/id")
    region: Region = None

    @field_validator("resource_type")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value not in IAC_RESOURCE_TYPES:
            raise ValueError(f"must be one of {', '.join(IAC_RESOURCE_TYPES)}")
        return value


def build_token(idempotency_token: str) -> str:
    """The token as CodeBuild accepts it: unchanged up to 64 characters, else its SHA-256."""
    if 0 < len(idempotency_token) <= MAX_TOKEN_LENGTH:
        return idempotency_token
    return hashlib.sha256(idempotency_token.encode()).hexdigest()


def interpret_build(build: Mapping[str, Any] | None) -> CheckOutcome:
    """What a build's status means for the recovery (pure: each status is unit-tested)."""
    if build is None:
        return CheckOutcome(
            "FAILED",
            "recovery build not found",
            [{"check": "build_status", "expected": "SUCCEEDED", "actual": "NOT_FOUND"}],
        )
    status = str(build.get("buildStatus") or "UNKNOWN")
    phase = build.get("currentPhase")
    checks = [{"check": "build_status", "expected": "SUCCEEDED", "actual": status}]
    build_id = build.get("id", "?")
    if status == "SUCCEEDED":
        return CheckOutcome("PASSED", f"recovery build {build_id} succeeded", checks)
    if status in _FINAL_FAILURES:
        where = f" in phase {phase}" if phase else ""
        return CheckOutcome(
            "FAILED", f"recovery build {build_id} {status}{where}", checks, settled=True
        )
    where = f" ({phase})" if phase else ""
    return CheckOutcome("PENDING", f"recovery build {build_id} {status.lower()}{where}", checks)


def _time(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def build_running_seconds(build: Mapping[str, Any], now: datetime) -> float | None:
    """Seconds since the build started; None if it reports no start time."""
    start = _time(build.get("startTime"))
    return None if start is None else max(0.0, (now - start).total_seconds())


def build_age_seconds(build: Mapping[str, Any], now: datetime) -> float | None:
    """Seconds since the build ended; None if it reports no end time."""
    end = build.get("endTime")
    if isinstance(end, str):
        try:
            end = datetime.fromisoformat(end)
        except ValueError:
            return None
    if not isinstance(end, datetime):
        return None
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return max(0.0, (now - end).total_seconds())


@CATALOG.register("iac.restore")
class IacRestore(BaseAction[IacRestoreParams]):
    resource_type = "any"
    resource_types = IAC_RESOURCE_TYPES
    description = "Re-apply the resource's declared state with the IaC recovery CodeBuild project."
    permissions = (
        "codebuild:BatchGetBuilds",
        "codebuild:ListBuildsForProject",
        "codebuild:StartBuild",
        "codebuild:StopBuild",
        *VERIFY_PERMISSIONS,
    )
    params_model = IacRestoreParams

    give_up_margin_seconds: float = 30.0
    """A running build is stopped this long before verification would give up on it."""
    resource_grace_seconds: float = 120.0
    """How long after the build ended a resource that is not found yet is PENDING, not FAILED."""

    @property
    def project(self) -> str:
        return self.deps.codebuild_project

    async def precheck(self, params: Mapping[str, Any]) -> str | None:
        """An instance of an Auto Scaling group is the group's to replace, not Terraform's.

        A scale-in's TerminateInstances call names Auto Scaling and is judged normal, but the
        state-change events that follow name no one; the instance's tags still say who owned it.
        """
        p = self.parse(params)
        if p.resource_type != "ec2":
            return None
        ec2 = await self.deps.clients.client("ec2", region=p.region)
        try:
            got = await ec2.describe_instances(InstanceIds=[p.resource_id])
        except ClientError:
            return None  # gone from the API: nothing says it was managed
        for reservation in got.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                for tag in instance.get("Tags", []):
                    if tag.get("Key") == "aws:autoscaling:groupName":
                        return (
                            f"instance {p.resource_id} belonged to Auto Scaling group "
                            f"{tag.get('Value')}, which replaces its own instances"
                        )
        return None

    async def _own_build(self, codebuild: Any, idempotency_token: str) -> dict[str, Any] | None:
        """This incident's build among the project's newest, if one was started already."""
        listed = await codebuild.list_builds_for_project(
            projectName=self.project, sortOrder="DESCENDING"
        )
        ids = list(listed.get("ids", []))[:OWN_BUILD_LOOKBACK]
        if not ids:
            return None
        got = await codebuild.batch_get_builds(ids=ids)
        for build in got.get("builds", []):
            variables = (build.get("environment") or {}).get("environmentVariables") or []
            if any(
                v.get("name") == TOKEN_VARIABLE and v.get("value") == idempotency_token
                for v in variables
            ):
                return dict(build)
        return None

    def _following(self, earlier: Mapping[str, Any], p: IacRestoreParams) -> StepOutcome:
        build_id = str(earlier["id"])
        status = str(earlier.get("buildStatus") or "UNKNOWN")
        log.info("iac.build_found", project=self.project, build_id=build_id, status=status)
        return StepOutcome(
            True,
            f"recovery build {build_id} for {p.resource_type} {p.resource_id} was already "
            f"started for this incident ({status}): following it, not starting another",
            {"build_id": build_id, "project": self.project, "resumed": True},
        )

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        p = self.parse(params)
        env = [
            ("AIOPS_RESOURCE_TYPE", p.resource_type),
            ("AIOPS_RESOURCE_ID", p.resource_id),
            (TOKEN_VARIABLE, idempotency_token),
        ]
        if p.region:
            env.append(("AIOPS_RESOURCE_REGION", p.region))
        codebuild = await self.deps.clients.client("codebuild")
        try:
            earlier = await self._own_build(codebuild, idempotency_token)
            if earlier is not None:
                return self._following(earlier, p)
            resp = await codebuild.start_build(
                projectName=self.project,
                idempotencyToken=build_token(idempotency_token),
                environmentVariablesOverride=[
                    {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in env
                ],
            )
        except ClientError as exc:
            code = error_code(exc)
            if code not in _PERMANENT_START_ERRORS:
                raise
            log.warning("iac.start_failed", project=self.project, error_code=code)
            return StepOutcome(
                False,
                f"cannot start recovery build on project {self.project}: {code}",
                {"project": self.project, "error_code": code},
            )
        build_id = str(resp["build"]["id"])
        log.info("iac.build_started", project=self.project, build_id=build_id)
        return StepOutcome(
            True,
            f"started recovery build {build_id} for {p.resource_type} {p.resource_id}",
            {"build_id": build_id, "project": self.project},
        )

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        build_id = result.get("build_id")
        if not isinstance(build_id, str) or not build_id:
            return CheckOutcome("FAILED", "no recovery build was started", [])
        codebuild = await self.deps.clients.client("codebuild")
        resp = await codebuild.batch_get_builds(ids=[build_id])
        found = [b for b in resp.get("builds", []) if b.get("id") == build_id]
        build = found[0] if found else None
        outcome = interpret_build(build)
        if outcome.status == "PENDING" and build is not None:
            return await self._give_up_in_time(codebuild, build, outcome)
        if outcome.status != "PASSED" or build is None:
            return outcome
        p = self.parse(params)
        resource = await verify_resource(
            self.deps.clients,
            p.resource_type,
            p.resource_id,
            p.region,
            build_age_seconds=build_age_seconds(build, datetime.now(UTC)),
            grace_seconds=self.resource_grace_seconds,
            ec2_tagged=self.deps.iac_tags_ec2,
        )
        return merge(outcome, resource)

    async def _give_up_in_time(
        self, codebuild: Any, build: Mapping[str, Any], running: CheckOutcome
    ) -> CheckOutcome:
        """A build still running when verification is about to give up is stopped (StopBuild),
        and the verdict says so; before that, it is PENDING."""
        age = build_running_seconds(build, datetime.now(UTC))
        margin = self.give_up_margin_seconds
        budget = max(margin, self.deps.verify_timeout_seconds - margin)
        if age is None or age < budget:
            return running
        build_id = str(build.get("id"))
        try:
            await codebuild.stop_build(id=build_id)
        except ClientError as exc:
            log.warning("iac.stop_failed", build_id=build_id, error_code=error_code(exc))
            detail = f"could not stop it ({error_code(exc) or 'error'}): it may still be running"
        else:
            log.warning("iac.build_stopped", build_id=build_id, running_seconds=round(age))
            detail = "stopped it (StopBuild); what it applied so far stays applied"
        return CheckOutcome(
            "FAILED",
            f"recovery build {build_id} still {str(build.get('buildStatus')).lower()} after "
            f"{age:.0f} s, longer than verification waits ({self.deps.verify_timeout_seconds:g} "
            f"s): {detail}",
            [{"check": "build_status", "expected": "SUCCEEDED", "actual": "STOPPED_BY_AGENT"}],
            settled=True,
        )

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        p = self.parse(params)
        return (
            f"would start CodeBuild project {self.project} to re-apply the declared state of "
            f"{p.resource_type} {p.resource_id}"
        )
