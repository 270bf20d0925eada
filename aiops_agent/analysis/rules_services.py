"""Rules for the API calls of Lambda, SSM, DynamoDB, S3, RDS, IAM, ECS, CloudTrail, CloudWatch
and EventBridge, and for SSM's and S3's and RDS's own events.

Recoverable from IaC (`iac.restore`): a deleted Lambda function, DynamoDB table, S3 bucket or SSM
parameter, and a changed S3 bucket policy. An overwritten SSM parameter gets its previous value
back (`ssm.restore_parameter`). Every other destructive or configuration change is classified
and notified with an empty plan.
"""

from __future__ import annotations

from aiops_agent.analysis.rules_base import (
    call_rule,
    destructive,
    event_rule,
    normal,
    restore_parameter_plan,
    restore_plan,
    tampering_notice,
    verdict,
    what,
    who,
)
from aiops_agent.domain.models import Analysis, Classification, NormalizedEvent, Severity
from aiops_agent.intake.envelope import clip
from aiops_agent.intake.ssm import PARAMETER_STORE_CHANGE
from aiops_agent.intake.storage import S3_OBJECT_EVENTS


def _restore(event: NormalizedEvent, done: str) -> Analysis:
    return destructive(
        event,
        f"{event.action} by {who(event)} {done} {what(event)}",
        "plan: restore it from IaC",
        restore_plan(event),
    )


# ---------------------------------------------------------------- deletions IaC restores


@call_rule("lambda", "DeleteFunction")
def delete_function(event: NormalizedEvent) -> Analysis:
    qualifier = event.details.get("qualifier")
    if qualifier:
        return normal(
            0.8,
            f"DeleteFunction deleted version {clip(qualifier, 64)} of {what(event)} only: "
            "the function remains",
        )
    return _restore(event, "deleted")


@call_rule("dynamodb", "DeleteTable")
def delete_table(event: NormalizedEvent) -> Analysis:
    return _restore(event, "deleted")


@call_rule("s3", "DeleteBucket")
def delete_bucket(event: NormalizedEvent) -> Analysis:
    return _restore(event, "deleted")


@call_rule("s3", "PutBucketPolicy", "DeleteBucketPolicy")
def bucket_policy(event: NormalizedEvent) -> Analysis:
    return destructive(
        event,
        f"{event.action} by {who(event)} changed the policy of {what(event)}",
        "plan: restore the bucket (and its policy) from IaC",
        restore_plan(event),
        classification=Classification.TAMPERING,
    )


# ---------------------------------------------------------------- SSM parameters


@call_rule("ssm", "PutParameter")
def put_parameter(event: NormalizedEvent) -> Analysis:
    version = event.details.get("version")
    version = version if isinstance(version, int) and not isinstance(version, bool) else None
    overwrite = event.details.get("overwrite") is True
    if not overwrite and (version is None or version == 1):
        return normal(
            0.85,
            f"PutParameter created {what(event)}"
            + (" (version 1)" if version == 1 else " (no overwrite)")
            + ": a new parameter, nothing to restore",
        )
    return destructive(
        event,
        f"PutParameter by {who(event)} overwrote {what(event)}"
        + (f" (now version {version})" if version else ""),
        "plan: put back the value it had before",
        restore_parameter_plan(event, version),
        classification=Classification.TAMPERING,
    )


@call_rule("ssm", "DeleteParameter", "DeleteParameters")
def delete_parameter(event: NormalizedEvent) -> Analysis:
    return destructive(
        event,
        f"{event.action} by {who(event)} deleted {what(event)}",
        "plan: restore it from IaC",
        restore_plan(event),
        classification=Classification.TAMPERING,
    )


@event_rule(PARAMETER_STORE_CHANGE)
def parameter_store_change(event: NormalizedEvent) -> Analysis:
    operation = clip(event.details.get("operation") or event.action, 64)
    name = clip(event.resource_id, 256)
    if operation == "Update":
        return verdict(
            Classification.TAMPERING,
            0.85,
            f"parameter {name} was changed (Parameter Store Change: Update)",
            "plan: put back the value it had before",
            severity=Severity.HIGH,
            plan=restore_parameter_plan(event, None),
        )
    if operation == "Delete":
        return verdict(
            Classification.TAMPERING,
            0.9,
            f"parameter {name} was deleted (Parameter Store Change: Delete)",
            "plan: restore it from IaC",
            severity=Severity.HIGH,
            plan=restore_plan(event),
        )
    if operation == "Create":
        return normal(0.9, f"parameter {name} was created: nothing to restore")
    return normal(0.8, f"parameter {name}: {operation}: no value changed")


# ---------------------------------------------------------------- configuration changes


@call_rule(
    "lambda",
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "AddPermission",
    "CreateFunctionUrlConfig",
    "UpdateFunctionUrlConfig",
    "PutFunctionConcurrency",
)
def lambda_change(event: NormalizedEvent) -> Analysis:
    return tampering_notice(event, "changed code, configuration or access")


@call_rule(
    "dynamodb",
    "UpdateTable",
    "UpdateTimeToLive",
    "UpdateContinuousBackups",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
)
def table_change(event: NormalizedEvent) -> Analysis:
    return tampering_notice(event, "changed the configuration")


@call_rule(
    "s3",
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
)
def bucket_change(event: NormalizedEvent) -> Analysis:
    return tampering_notice(event, "changed the access or protection settings")


@call_rule("rds", "ModifyDBInstance", "ModifyDBCluster", "ModifyDBSnapshotAttribute")
def database_change(event: NormalizedEvent) -> Analysis:
    return tampering_notice(event, "changed the configuration")


@call_rule(
    "iam",
    "CreateAccessKey",
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
)
def permission_change(event: NormalizedEvent) -> Analysis:
    return tampering_notice(event, "changed permissions or credentials")


@call_rule("cloudtrail", "StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors")
def audit_change(event: NormalizedEvent) -> Analysis:
    return tampering_notice(event, "changed audit logging")


@call_rule("cloudwatch", "DeleteAlarms", "DisableAlarmActions", "PutMetricAlarm")
def monitoring_change(event: NormalizedEvent) -> Analysis:
    return tampering_notice(event, "changed monitoring")


@call_rule("events", "DeleteRule", "DisableRule", "PutRule", "RemoveTargets", "PutTargets")
def routing_change(event: NormalizedEvent) -> Analysis:
    return tampering_notice(event, "changed event routing (possibly the agent's own feed)")


# ---------------------------------------------------------------- notify-only failures


@call_rule("rds", "DeleteDBInstance", "DeleteDBCluster", "StopDBInstance", "StopDBCluster")
def database_down(event: NormalizedEvent) -> Analysis:
    analysis = destructive(
        event,
        f"{event.action} by {who(event)} on {what(event)}",
        "no automated recovery for rds: notify only",
        confidence=0.85,
    )
    if event.details.get("skipFinalSnapshot") is True:
        reasons = (*analysis.reasons, "deleted without a final snapshot")
        return analysis.model_copy(update={"reasons": reasons, "severity": Severity.CRITICAL})
    return analysis


@call_rule("ecs", "UpdateService")
def update_service(event: NormalizedEvent) -> Analysis:
    if event.details.get("desiredCount") == 0:
        return destructive(
            event,
            f"UpdateService by {who(event)} scaled {what(event)} to zero tasks",
            "no automated recovery: notify only",
            confidence=0.85,
        )
    return normal(0.75, f"UpdateService on {what(event)}: a deployment or scaling change")


# ---------------------------------------------------------------- benign


@call_rule("s3", "CreateBucket")
@call_rule("dynamodb", "CreateTable")
@call_rule("lambda", "CreateFunction")
@call_rule("rds", "CreateDBInstance")
def creation(event: NormalizedEvent) -> Analysis:
    return normal(0.9, f"{event.action} created {what(event)}: nothing to recover")


@call_rule("s3", "DeleteObject", "DeleteObjects", "PutObject")
def object_call(event: NormalizedEvent) -> Analysis:
    return normal(0.85, f"{event.action} on an object of {what(event)}: data, not infrastructure")


@event_rule(*S3_OBJECT_EVENTS)
def object_event(event: NormalizedEvent) -> Analysis:
    key = clip(event.details.get("key") or "an object", 128)
    return normal(
        0.9,
        f"{clip(event.action, 64)}: {key} in bucket {clip(event.resource_id, 64)}: "
        "an object, not the bucket",
    )
