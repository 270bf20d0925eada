"""Post-conditions of an IaC restore, per resource type: is the resource back, and usable?

A build that SUCCEEDED says only that `terraform apply` exited 0. What `iac.restore` reports is
the resource's own state, read from its service:

| type     | read with                       | passed             | pending  |
|----------|---------------------------------|--------------------|----------|
| lambda   | GetFunctionConfiguration.State  | Active, Inactive   | Pending  |
| dynamodb | DescribeTable.TableStatus       | ACTIVE, UPDATING   | CREATING |
| s3       | HeadBucket                      | exists             |          |
| ssm      | GetParameter                    | exists             |          |
| ec2      | the instance tagged             | running, status    | pending  |
|          | `aiops:restored-from=<old id>`  | checks ok          |          |

Any other state fails. A resource not found right after the build is PENDING for a grace period
(the build's end may precede what its API shows), then FAILED. An S3 bucket that answers 403
exists but is not ours: FAILED. For EC2, Terraform creates a *new* instance id, so the recovery
project must tag what it creates `aiops:restored-from=$AIOPS_RESOURCE_ID`; with
`ActionDeps.iac_tags_ec2=False` (a project that cannot tag) the build's success is all that is
checked, and the check says so instead of pretending to have seen the instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from aiops_agent.actions.common import error_code
from aiops_agent.actions.instances import check_instance
from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.ports import CheckOutcome

RESTORED_FROM_TAG = "aiops:restored-from"

VERIFY_PERMISSIONS: tuple[str, ...] = (
    "dynamodb:DescribeTable",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstances",
    "lambda:GetFunctionConfiguration",
    "s3:ListBucket",
    "ssm:GetParameter",
)
"""What `observe` needs (HeadBucket is authorized by s3:ListBucket)."""


@dataclass(frozen=True)
class Expectation:
    expected: str
    passed: frozenset[str]
    pending: frozenset[str] = frozenset()


EXPECTATIONS: Mapping[str, Expectation] = {
    "lambda": Expectation("Active", frozenset({"Active", "Inactive"}), frozenset({"Pending"})),
    "dynamodb": Expectation("ACTIVE", frozenset({"ACTIVE", "UPDATING"}), frozenset({"CREATING"})),
    "s3": Expectation("exists", frozenset({"exists"})),
    "ssm": Expectation("exists", frozenset({"exists"})),
    "ec2": Expectation("running", frozenset({"running"}), frozenset({"pending"})),
}


def interpret_resource(
    resource_type: str,
    resource_id: str,
    observed: str | None,
    *,
    build_age_seconds: float | None,
    grace_seconds: float,
) -> CheckOutcome:
    """What the observed state of a restored resource means (pure; None = not found)."""
    rule = EXPECTATIONS[resource_type]
    what = f"{resource_type} {resource_id}"
    checks = [
        {
            "check": "resource_state",
            "resource": what,
            "expected": rule.expected,
            "actual": observed or "not-found",
        }
    ]
    if observed is None:
        if build_age_seconds is None or build_age_seconds < grace_seconds:
            return CheckOutcome("PENDING", f"{what} not found yet after the build", checks)
        return CheckOutcome(
            "FAILED", f"{what} not found {build_age_seconds:.0f}s after the build", checks
        )
    if observed in rule.passed:
        return CheckOutcome("PASSED", f"{what} is {observed}", checks)
    if observed in rule.pending:
        return CheckOutcome("PENDING", f"{what} is {observed}", checks)
    return CheckOutcome("FAILED", f"{what} is {observed}", checks)


def build_only(resource_id: str) -> CheckOutcome:
    """The honest outcome when the restored instance cannot be identified."""
    return CheckOutcome(
        "PASSED",
        f"recovery build succeeded; the instance replacing {resource_id} was not checked "
        "(the recovery project does not tag it)",
        [
            {
                "check": "replacement_instance",
                "expected": f"tagged {RESTORED_FROM_TAG}={resource_id}",
                "actual": "not checked: build success only",
            }
        ],
    )


async def _lambda_state(clients: AwsClients, name: str, region: str | None) -> str | None:
    client = await clients.client("lambda", region=region)
    try:
        resp = await client.get_function_configuration(FunctionName=name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return str(resp.get("State") or "Active")


async def _table_state(clients: AwsClients, name: str, region: str | None) -> str | None:
    client = await clients.client("dynamodb", region=region)
    try:
        resp = await client.describe_table(TableName=name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return str(resp["Table"]["TableStatus"])


async def _bucket_state(clients: AwsClients, name: str, region: str | None) -> str | None:
    client = await clients.client("s3", region=region)
    try:
        await client.head_bucket(Bucket=name)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return None
        if code in ("403", "AccessDenied", "Forbidden"):
            return "forbidden"
        raise
    return "exists"


async def _parameter_state(clients: AwsClients, name: str, region: str | None) -> str | None:
    client = await clients.client("ssm", region=region)
    try:
        await client.get_parameter(Name=name, WithDecryption=False)
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    return "exists"


async def replacement_instance(
    clients: AwsClients, old_id: str, region: str | None
) -> tuple[str, str] | None:
    """(instance id, state) of the newest live instance tagged as restored from `old_id`."""
    ec2 = await clients.client("ec2", region=region)
    resp = await ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{RESTORED_FROM_TAG}", "Values": [old_id]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    live = [i for r in resp.get("Reservations", []) for i in r.get("Instances", [])]
    if not live:
        return None
    live.sort(key=lambda i: (i["State"]["Name"] == "running", str(i.get("LaunchTime", ""))))
    newest = live[-1]
    return str(newest["InstanceId"]), str(newest["State"]["Name"])


async def verify_resource(
    clients: AwsClients,
    resource_type: str,
    resource_id: str,
    region: str | None,
    *,
    build_age_seconds: float | None,
    grace_seconds: float,
    ec2_tagged: bool = True,
) -> CheckOutcome:
    """Read the restored resource's state from its service and judge it."""

    def judge(observed: str | None) -> CheckOutcome:
        return interpret_resource(
            resource_type,
            resource_id,
            observed,
            build_age_seconds=build_age_seconds,
            grace_seconds=grace_seconds,
        )

    if resource_type == "ec2":
        if not ec2_tagged:
            return build_only(resource_id)
        found = await replacement_instance(clients, resource_id, region)
        if found is None or found[1] != "running":
            return judge(found[1] if found else None)
        new_id = found[0]
        ec2 = await clients.client("ec2", region=region)
        outcome = await check_instance(ec2, new_id)
        checks = [{**judge("running").checks[0], "instance_id": new_id}, *outcome.checks[1:]]
        return CheckOutcome(
            outcome.status, f"instance {new_id} replacing {resource_id}: {outcome.detail}", checks
        )
    probes = {
        "lambda": _lambda_state,
        "dynamodb": _table_state,
        "s3": _bucket_state,
        "ssm": _parameter_state,
    }
    return judge(await probes[resource_type](clients, resource_id, region))


def merge(build: CheckOutcome, resource: CheckOutcome) -> CheckOutcome:
    """The build's check followed by the resource's: the resource decides once the build passed."""
    checks: list[dict[str, Any]] = [*map(dict, build.checks), *map(dict, resource.checks)]
    return CheckOutcome(resource.status, f"{build.detail}; {resource.detail}", checks)
