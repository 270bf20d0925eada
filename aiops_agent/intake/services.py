"""CloudTrail API calls of the services the agent watches, by a table: service, calls, id keys.

Each row registers one normalizer for its calls that takes the resource's name from the first
request parameter present among the row's keys (a list of names gives one event per name), and
turns ARNs into the name users use. A call whose parameters name nothing (a denied call with
`requestParameters: null`) falls back to the generic normalizer, which also reads the error
message ("... on resource: arn:..."). EC2 instance calls, security groups and SSM parameters
have their own modules: their ids need more than a key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.cloudtrail import CloudTrailCall, cloudtrail_normalizer, generic_call
from aiops_agent.intake.envelope import clip, text_field
from aiops_agent.intake.resources import arn_resource_id, trim

MAX_RESOURCES_PER_CALL = 20
"""One call on more resources than this gives events for the first ones only (logged)."""

IdCleaner = Callable[[str], tuple[str, dict[str, Any]]]
"""A raw id from the request -> the name users use, plus facts (a Lambda qualifier)."""


def _plain(raw: str) -> tuple[str, dict[str, Any]]:
    if raw.startswith("arn:"):
        return arn_resource_id(raw) or raw, {}
    return raw, {}


def lambda_function(raw: str) -> tuple[str, dict[str, Any]]:
    """A function name, ARN or partial ARN (`123:function:f`), with or without a `:qualifier`."""
    rest = raw.split(":function:", 1)[1] if ":function:" in raw else raw
    name, _, qualifier = rest.partition(":")
    if not name:
        return _plain(raw)
    return clip(name, 140), ({"qualifier": clip(qualifier, 128)} if qualifier else {})


@dataclass(frozen=True)
class ServiceCalls:
    """One row: every listed call of `event_source` is about a `resource_type` named by `keys`."""

    event_source: str
    resource_type: str
    calls: tuple[str, ...]
    keys: tuple[str, ...]
    clean: IdCleaner = _plain
    facts: tuple[str, ...] = ()
    """Request parameters worth keeping as details (scalars only, clipped)."""


SERVICE_CALLS: tuple[ServiceCalls, ...] = (
    ServiceCalls(
        "lambda.amazonaws.com",
        "lambda",
        (
            "DeleteFunction",
            "CreateFunction",
            "UpdateFunctionCode",
            "UpdateFunctionConfiguration",
            "AddPermission",
            "RemovePermission",
            "PutFunctionConcurrency",
            "DeleteFunctionConcurrency",
            "PublishVersion",
            "CreateAlias",
            "UpdateAlias",
            "DeleteAlias",
            "CreateFunctionUrlConfig",
            "UpdateFunctionUrlConfig",
            "DeleteFunctionUrlConfig",
            "GetFunction",
            "Invoke",
        ),
        ("functionName",),
        lambda_function,
        ("qualifier", "name"),
    ),
    ServiceCalls(
        "dynamodb.amazonaws.com",
        "dynamodb",
        (
            "DeleteTable",
            "CreateTable",
            "UpdateTable",
            "UpdateTimeToLive",
            "UpdateContinuousBackups",
            "DeleteBackup",
            "CreateBackup",
            "PutResourcePolicy",
            "DeleteResourcePolicy",
            "DescribeTable",
        ),
        ("tableName", "targetTableName", "resourceArn", "backupArn"),
    ),
    ServiceCalls(
        "s3.amazonaws.com",
        "s3",
        (
            "DeleteBucket",
            "CreateBucket",
            "PutBucketPolicy",
            "DeleteBucketPolicy",
            "PutBucketAcl",
            "PutBucketPublicAccessBlock",
            "DeleteBucketPublicAccessBlock",
            "PutBucketEncryption",
            "DeleteBucketEncryption",
            "PutBucketVersioning",
            "PutBucketLogging",
            "PutBucketLifecycle",
            "DeleteBucketLifecycle",
            "PutBucketReplication",
            "DeleteBucketReplication",
            "PutBucketOwnershipControls",
            "DeleteObject",
            "DeleteObjects",
            "PutObject",
            "GetObject",
        ),
        ("bucketName",),
    ),
    ServiceCalls(
        "rds.amazonaws.com",
        "rds",
        (
            "DeleteDBInstance",
            "DeleteDBCluster",
            "StopDBInstance",
            "StopDBCluster",
            "StartDBInstance",
            "StartDBCluster",
            "RebootDBInstance",
            "ModifyDBInstance",
            "ModifyDBCluster",
            "CreateDBInstance",
            "CreateDBCluster",
            "DeleteDBSnapshot",
            "DeleteDBClusterSnapshot",
            "RestoreDBInstanceFromDBSnapshot",
            "ModifyDBSnapshotAttribute",
        ),
        (
            "dBInstanceIdentifier",
            "dBClusterIdentifier",
            "dBSnapshotIdentifier",
            "dBClusterSnapshotIdentifier",
        ),
        facts=("skipFinalSnapshot", "deleteAutomatedBackups", "applyImmediately"),
    ),
    ServiceCalls(
        "iam.amazonaws.com",
        "iam",
        (
            "DeleteRole",
            "DeleteUser",
            "DeletePolicy",
            "DeleteGroup",
            "CreateRole",
            "CreateUser",
            "CreateAccessKey",
            "DeleteAccessKey",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "PutRolePolicy",
            "DeleteRolePolicy",
            "AttachUserPolicy",
            "DetachUserPolicy",
            "PutUserPolicy",
            "DeleteUserPolicy",
            "AttachGroupPolicy",
            "PutGroupPolicy",
            "AddUserToGroup",
            "UpdateAssumeRolePolicy",
            "CreatePolicyVersion",
            "SetDefaultPolicyVersion",
            "CreateLoginProfile",
            "UpdateLoginProfile",
            "GetRole",
            "GetUser",
            "GetPolicy",
        ),
        ("roleName", "userName", "groupName", "policyArn", "instanceProfileName"),
        facts=("policyArn", "policyName"),
    ),
    ServiceCalls(
        "ecs.amazonaws.com",
        "ecs",
        ("DeleteService", "UpdateService", "DeleteCluster", "CreateService"),
        ("service", "serviceName", "cluster", "clusterName"),
        facts=("desiredCount", "forceNewDeployment", "taskDefinition"),
    ),
    ServiceCalls(
        "cloudtrail.amazonaws.com",
        "cloudtrail",
        ("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "StartLogging"),
        ("name", "trailName"),
    ),
    ServiceCalls(
        "monitoring.amazonaws.com",
        "cloudwatch",
        ("DeleteAlarms", "DisableAlarmActions", "EnableAlarmActions", "PutMetricAlarm"),
        ("alarmNames", "alarmName"),
    ),
    ServiceCalls(
        "events.amazonaws.com",
        "events",
        ("DeleteRule", "DisableRule", "EnableRule", "PutRule", "RemoveTargets", "PutTargets"),
        ("name", "rule"),
        facts=("eventBusName", "state"),
    ),
)


def _raw_ids(request: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    for key in keys:
        value = request.get(key)
        values = value if isinstance(value, list) else [value]
        found = [text_field(v, 1024) for v in values if text_field(v, 1024)]
        if found:
            return found
    return []


def _ecs_id(call: CloudTrailCall, raw: str) -> str:
    """An ECS service as `cluster/service` (its ARN form), a cluster by its name."""
    name = arn_resource_id(raw) or raw if raw.startswith("arn:") else raw
    if "/" in name or call.event_name in ("DeleteCluster",):
        return name
    cluster_raw = text_field(call.request.get("cluster"), 512) or "default"
    cluster = (
        arn_resource_id(cluster_raw) or cluster_raw
        if cluster_raw.startswith("arn:")
        else cluster_raw
    )
    return f"{cluster}/{name}"


def _normalizer(row: ServiceCalls) -> Callable[[CloudTrailCall], list[NormalizedEvent]]:
    def normalize(call: CloudTrailCall) -> list[NormalizedEvent]:
        raw_ids = _raw_ids(call.request, row.keys)
        if not raw_ids:
            events = generic_call(call)
            return [e.model_copy(update={"resource_type": row.resource_type}) for e in events]
        shared: dict[str, Any] = {}
        for key in row.facts:
            value = call.request.get(key)
            if isinstance(value, bool | int | float) or (isinstance(value, str) and value):
                shared[key] = clip(value, 256) if isinstance(value, str) else value
        if len(raw_ids) > 1:
            shared["resources_in_call"] = len(raw_ids)
        if row.resource_type == "s3" and "bucketPolicy" in call.request:
            shared["policy"] = trim(call.request["bucketPolicy"], depth=5)
        events = []
        for raw in raw_ids[:MAX_RESOURCES_PER_CALL]:
            facts: dict[str, Any]
            if row.resource_type == "ecs":
                name, facts = _ecs_id(call, raw), {}
            else:
                name, facts = row.clean(raw)
            details = {**shared, **facts}
            events.append(
                call.event(resource_type=row.resource_type, resource_id=name, details=details)
            )
        return events

    normalize.__name__ = f"{row.resource_type}_call"
    return normalize


for _row in SERVICE_CALLS:
    cloudtrail_normalizer(_row.event_source, *_row.calls)(_normalizer(_row))
