"""The ECS task role's IAM policy, generated from the action catalog plus the agent's own needs.

`python -m aiops_agent.provision.iam_policy` prints it; `deploy/terraform/generate.py` writes it to
`deploy/terraform/task_role_policy.json`, which Terraform renders with `templatefile()`. The
document is a template: resources carry `${...}` placeholders (`TEMPLATE_VARIABLES`) that
Terraform fills with the partition, account, region and the ARNs of what it creates.

Every IAM action is named (no `*` in an action), and each is granted on the narrowest resource
its service allows:

- the agent's own calls (`AGENT_GRANTS`): the queue and its dead-letter queue, the two DynamoDB
  tables and their indexes, the SNS topic, the recovery CodeBuild project, Logs Insights on the
  monitored log groups, the Bedrock model, the KMS key that encrypts all of those, and
  `sts:GetCallerIdentity` (the agent's own identity is always a trusted principal);
- the catalog's (`CATALOG.permissions()`), each placed by `ACTION_SCOPES` on its resource type,
  in any region (actions follow the event's region) of the agent's account;
- the KMS use that AWS checks only on real resources (`KMS_VIA_SERVICE`): starting an instance
  whose EBS volumes are encrypted with a customer managed key needs `kms:CreateGrant` (for an AWS
  resource only) and `kms:Decrypt` on that key, reading or writing a SecureString parameter
  needs `kms:Decrypt`/`kms:Encrypt`; each only through that service (`kms:ViaService`), on keys
  of the account, granted when the catalog has an action that needs it.

Bedrock: an inference profile (`us.anthropic...`, `global....`) routes a call to the foundation
model in any Region of its geography, and IAM checks the foundation model in the Region that
serves the call; so the foundation model is granted in every Region (`foundation_model_id`, the
model id without its profile prefix, is computed by Terraform) and the profile in ours.

An action the catalog declares that `ACTION_SCOPES` does not know is granted on `*` (so it works)
and listed by `unclassified()`; the tests fail until it is classified here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiops_agent.actions.registry import CATALOG, ActionRegistry

POLICY_VERSION: Final = "2012-10-17"

TEMPLATE_VARIABLES: Final[tuple[str, ...]] = (
    "partition",
    "region",
    "account_id",
    "queue_arn",
    "dead_letter_queue_arn",
    "incident_table_arn",
    "patterns_table_arn",
    "sns_topic_arn",
    "kms_key_arn",
    "codebuild_project",
    "log_group_prefix",
    "model_id",
    "foundation_model_id",
)
"""The `${...}` placeholders of the template: the Terraform `templatefile()` variables."""

_ACCOUNT: Final = "arn:${partition}:%s:*:${account_id}:%s"
"""A resource of the agent's account in any region: actions act in the event's region."""


@dataclass(frozen=True)
class Scope:
    """A set of resources one statement grants on; `sid` names the statement."""

    sid: str
    resources: tuple[str, ...]


UNSCOPED: Final = Scope("NoResourceLevelPermissions", ("*",))
"""For actions whose service supports no resource-level permission (Describe*, List*, ...)."""

SCOPES: Final[dict[str, Scope]] = {
    scope.sid: scope
    for scope in (
        # -- the agent's own resources (created by deploy/terraform)
        Scope("ConsumeEventQueue", ("${queue_arn}",)),
        Scope("DeadLetterQueue", ("${dead_letter_queue_arn}",)),
        Scope(
            "IncidentAndPatternTables",
            (
                "${incident_table_arn}",
                "${incident_table_arn}/index/*",
                "${patterns_table_arn}",
                "${patterns_table_arn}/index/*",
            ),
        ),
        Scope("Notify", ("${sns_topic_arn}",)),
        Scope("EncryptionKey", ("${kms_key_arn}",)),
        Scope(
            "RecoveryProject",
            ("arn:${partition}:codebuild:${region}:${account_id}:project/${codebuild_project}",),
        ),
        Scope(
            "MonitoredLogGroups",
            ("arn:${partition}:logs:${region}:${account_id}:log-group:${log_group_prefix}*",),
        ),
        Scope(
            "AnalyzerModel",
            (
                "arn:${partition}:bedrock:*::foundation-model/${foundation_model_id}",
                "arn:${partition}:bedrock:${region}:${account_id}:inference-profile/${model_id}",
            ),
        ),
        Scope(
            "ChangeCalendars",
            ("arn:${partition}:ssm:${region}:${account_id}:document/*",),
        ),
        Scope("Trails", ("arn:${partition}:cloudtrail:*:*:trail/*",)),
        # -- resources the catalog's actions act on, anywhere in the account
        Scope("Ec2Instances", (_ACCOUNT % ("ec2", "instance/*"),)),
        Scope("Ec2SecurityGroups", (_ACCOUNT % ("ec2", "security-group/*"),)),
        Scope("Ec2Volumes", (_ACCOUNT % ("ec2", "volume/*"), "arn:${partition}:ec2:*::snapshot/*")),
        Scope("LambdaFunctions", (_ACCOUNT % ("lambda", "function:*"),)),
        Scope("SsmParameters", (_ACCOUNT % ("ssm", "parameter/*"),)),
        Scope("DynamoDbTables", (_ACCOUNT % ("dynamodb", "table/*"),)),
        Scope("S3Buckets", ("arn:${partition}:s3:::*",)),
        Scope("S3Objects", ("arn:${partition}:s3:::*/*",)),
        Scope("RdsInstances", (_ACCOUNT % ("rds", "db:*"),)),
        Scope("EcsServices", (_ACCOUNT % ("ecs", "service/*/*"),)),
        Scope(
            "AutoScalingGroups",
            (_ACCOUNT % ("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*"),),
        ),
        Scope("CloudWatchAlarms", (_ACCOUNT % ("cloudwatch", "alarm:*"),)),
        Scope(
            "IamPrincipals",
            (
                "arn:${partition}:iam::${account_id}:role/*",
                "arn:${partition}:iam::${account_id}:user/*",
            ),
        ),
        UNSCOPED,
    )
}

AGENT_GRANTS: Final[dict[str, tuple[str, ...]]] = {
    # sources/sqs.py: long-poll, delete after store, release on drain, find the DLQ
    "ConsumeEventQueue": (
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    ),
    # sources/sqs.py: poison messages go to the DLQ with the reason as attributes
    "DeadLetterQueue": ("sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"),
    # store/: incidents, event claims, leases, baselines, watermarks; queries on the GSIs
    "IncidentAndPatternTables": (
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:DescribeTable",
    ),
    # notify/sns.py
    "Notify": ("sns:Publish",),
    # queue, DLQ and topic are encrypted with one customer managed key: receiving needs Decrypt,
    # sending to the DLQ and publishing need GenerateDataKey (and Decrypt, for the data key).
    "EncryptionKey": ("kms:Decrypt", "kms:GenerateDataKey"),
    # actions/iac.py: the IaC recovery build (also declared by the catalog's iac.restore)
    "RecoveryProject": ("codebuild:StartBuild", "codebuild:BatchGetBuilds"),
    # the log analyzer: Logs Insights on the monitored groups (prefixes are expanded)
    "MonitoredLogGroups": ("logs:StartQuery", "logs:GetQueryResults", "logs:FilterLogEvents"),
    # the bedrock analyzer (Converse is authorized as InvokeModel)
    "AnalyzerModel": ("bedrock:InvokeModel",),
    # engine/gate.py: the policy's change freezes (AIOPS_CHANGE_CALENDARS, SSM documents of
    # type ChangeCalendar, named in the agent's region)
    "ChangeCalendars": ("ssm:GetCalendarState",),
    # no resource-level permission: StopQuery takes a query id; DescribeLogGroups expands the
    # prefixes of AIOPS_LOG_GROUPS (names only); GetCallerIdentity takes nothing; GetResources
    # reads a resource's tags (aiops:autonomy, aiops:tier) for the policy (aws/tags.py)
    "NoResourceLevelPermissions": (
        "logs:StopQuery",
        "logs:DescribeLogGroups",
        "sts:GetCallerIdentity",
        "tag:GetResources",
        "cloudtrail:DescribeTrails",
    ),
    # aws/trails.py: at start-up, is there a trail logging management events? (any trail of the
    # account, or an organization's; read only)
    "Trails": ("cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"),
}
"""Scope sid -> the IAM actions the agent itself needs there."""

ACCOUNT_KEYS: Final = "arn:${partition}:kms:*:${account_id}:key/*"


@dataclass(frozen=True)
class KmsUse:
    """KMS actions a service performs with the caller's permissions on the caller's behalf."""

    sid: str
    service: str
    """The `kms:ViaService` service (`ec2`: `ec2.<region>.amazonaws.com`)."""
    actions: tuple[str, ...]
    needed_by: frozenset[str]
    """Granted when the policy grants any of these actions."""
    for_aws_resource: bool = False
    """`kms:GrantIsForAWSResource`: the grant may be created only by an AWS service."""

    def statement(self) -> dict[str, Any]:
        condition: dict[str, Any] = {
            "StringLike": {"kms:ViaService": f"{self.service}.*.amazonaws.com"}
        }
        if self.for_aws_resource:
            condition["Bool"] = {"kms:GrantIsForAWSResource": "true"}
        return {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": sorted(self.actions),
            "Resource": ACCOUNT_KEYS,
            "Condition": condition,
        }


_EBS_USERS = frozenset({"ec2:StartInstances", "ec2:CreateSnapshot", "ec2:RebootInstances"})
_SECURE_STRING_USERS = frozenset(
    {"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory", "ssm:PutParameter"}
)
KMS_VIA_SERVICE: Final[tuple[KmsUse, ...]] = (
    # EBS encryption with a customer managed key (EBS user guide, "Permissions for users")
    KmsUse(
        "EbsVolumeKeysViaEc2",
        "ec2",
        (
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:GenerateDataKeyWithoutPlaintext",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
        ),
        _EBS_USERS,
    ),
    KmsUse("EbsVolumeKeyGrantsViaEc2", "ec2", ("kms:CreateGrant",), _EBS_USERS, True),
    # SecureString parameters with a customer managed key (GetParameter WithDecryption, and
    # PutParameter of a SecureString when restoring one)
    KmsUse(
        "SecureStringKeysViaSsm",
        "ssm",
        ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"),
        _SECURE_STRING_USERS,
    ),
)

ACTION_SCOPES: Final[dict[str, tuple[str, ...]]] = {
    # ec2: instances and security groups; Describe* supports no resource-level permission
    **dict.fromkeys(
        (
            "ec2:StartInstances",
            "ec2:StopInstances",
            "ec2:RebootInstances",
            "ec2:ModifyInstanceAttribute",
            "ec2:MonitorInstances",
        ),
        ("Ec2Instances",),
    ),
    **dict.fromkeys(
        (
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:ModifySecurityGroupRules",
        ),
        ("Ec2SecurityGroups",),
    ),
    "ec2:CreateSnapshot": ("Ec2Volumes",),
    "ec2:CreateTags": ("Ec2Instances", "Ec2SecurityGroups", "Ec2Volumes"),
    "ec2:DeleteTags": ("Ec2Instances", "Ec2SecurityGroups", "Ec2Volumes"),
    # lambda
    **dict.fromkeys(
        (
            "lambda:GetFunction",
            "lambda:GetFunctionConfiguration",
            "lambda:GetFunctionConcurrency",
            "lambda:PutFunctionConcurrency",
            "lambda:DeleteFunctionConcurrency",
            "lambda:UpdateFunctionConfiguration",
            "lambda:UpdateFunctionCode",
            "lambda:PublishVersion",
            "lambda:ListVersionsByFunction",
            "lambda:GetAlias",
            "lambda:UpdateAlias",
            "lambda:InvokeFunction",
            "lambda:TagResource",
        ),
        ("LambdaFunctions",),
    ),
    # ssm parameters
    **dict.fromkeys(
        (
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParameterHistory",
            "ssm:PutParameter",
            "ssm:DeleteParameter",
            "ssm:LabelParameterVersion",
            "ssm:UnlabelParameterVersion",
            "ssm:AddTagsToResource",
        ),
        ("SsmParameters",),
    ),
    # dynamodb tables (any table of the account, not only the agent's)
    **dict.fromkeys(
        (
            "dynamodb:DescribeTable",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:UpdateContinuousBackups",
            "dynamodb:UpdateTable",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateTimeToLive",
            "dynamodb:RestoreTableToPointInTime",
        ),
        ("DynamoDbTables",),
    ),
    # s3 buckets and objects
    **dict.fromkeys(
        (
            "s3:GetBucketPolicy",
            "s3:PutBucketPolicy",
            "s3:DeleteBucketPolicy",
            "s3:GetBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock",
            "s3:GetBucketVersioning",
            "s3:PutBucketVersioning",
            "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration",
            "s3:GetBucketAcl",
            "s3:PutBucketAcl",
            "s3:GetBucketLogging",
            "s3:PutBucketLogging",
            "s3:ListBucket",
            "s3:ListBucketVersions",
        ),
        ("S3Buckets",),
    ),
    **dict.fromkeys(
        ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObjectVersion"),
        ("S3Objects",),
    ),
    # rds, ecs, autoscaling, cloudwatch
    **dict.fromkeys(
        (
            "rds:DescribeDBInstances",
            "rds:StartDBInstance",
            "rds:RebootDBInstance",
            "rds:ModifyDBInstance",
        ),
        ("RdsInstances",),
    ),
    **dict.fromkeys(
        ("ecs:DescribeServices", "ecs:UpdateService", "ecs:TagResource"), ("EcsServices",)
    ),
    **dict.fromkeys(
        (
            "autoscaling:UpdateAutoScalingGroup",
            "autoscaling:SetDesiredCapacity",
            "autoscaling:ResumeProcesses",
        ),
        ("AutoScalingGroups",),
    ),
    **dict.fromkeys(
        (
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:EnableAlarmActions",
            "cloudwatch:DescribeAlarmHistory",
            "cloudwatch:DescribeAlarms",
        ),
        ("CloudWatchAlarms",),
    ),
    # iam (tampering rollbacks)
    **dict.fromkeys(
        (
            "iam:GetRole",
            "iam:GetRolePolicy",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
            "iam:DetachRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:PutRolePolicy",
            "iam:GetUser",
            "iam:ListAccessKeys",
            "iam:UpdateAccessKey",
            "iam:DetachUserPolicy",
            "iam:ListAttachedUserPolicies",
        ),
        ("IamPrincipals",),
    ),
    # codebuild: only the agent's recovery project
    **dict.fromkeys(
        (
            "codebuild:StartBuild",
            "codebuild:BatchGetBuilds",
            "codebuild:StopBuild",
            "codebuild:ListBuildsForProject",
        ),
        ("RecoveryProject",),
    ),
    # services and calls with no resource-level permission at all
    **dict.fromkeys(
        (
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceStatus",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeVolumes",
            "ec2:DescribeSnapshots",
            "ec2:DescribeTags",
            "ssm:DescribeParameters",
            "lambda:ListFunctions",
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeScalingActivities",
            "cloudwatch:GetMetricData",
            "cloudwatch:GetMetricStatistics",
            "s3:ListAllMyBuckets",
            "sts:GetCallerIdentity",
        ),
        ("NoResourceLevelPermissions",),
    ),
}
"""IAM action -> the scope(s) it is granted on, for every action a catalog action may declare."""


def unclassified(registry: ActionRegistry = CATALOG) -> list[str]:
    """Catalog permissions `ACTION_SCOPES` does not place (granted on `*` until classified)."""
    return [perm for perm in registry.permissions() if perm not in ACTION_SCOPES]


def catalog_grants(permissions: Iterable[str]) -> dict[str, set[str]]:
    """Scope sid -> actions, for the catalog's `permissions`."""
    grants: dict[str, set[str]] = {}
    for perm in permissions:
        for sid in ACTION_SCOPES.get(perm, (UNSCOPED.sid,)):
            grants.setdefault(sid, set()).add(perm)
    return grants


def build_policy(registry: ActionRegistry = CATALOG) -> dict[str, Any]:
    """The task role's policy document (a template: see `TEMPLATE_VARIABLES`)."""
    grants: dict[str, set[str]] = {sid: set(actions) for sid, actions in AGENT_GRANTS.items()}
    for sid, actions in catalog_grants(registry.permissions()).items():
        grants.setdefault(sid, set()).update(actions)
    statements = [
        {
            "Sid": sid,
            "Effect": "Allow",
            "Action": sorted(grants[sid]),
            "Resource": list(scope.resources) if len(scope.resources) > 1 else scope.resources[0],
        }
        for sid, scope in SCOPES.items()
        if grants.get(sid)
    ]
    granted = {action for actions in grants.values() for action in actions}
    statements += [use.statement() for use in KMS_VIA_SERVICE if use.needed_by & granted]
    return {"Version": POLICY_VERSION, "Statement": statements}


def render(registry: ActionRegistry = CATALOG) -> str:
    """`build_policy` as the JSON text written to `deploy/terraform/task_role_policy.json`."""
    return json.dumps(build_policy(registry), indent=2) + "\n"


def granted_actions(policy: dict[str, Any]) -> set[str]:
    """Every action a policy document allows."""
    actions: set[str] = set()
    for statement in policy["Statement"]:
        action = statement["Action"]
        actions.update([action] if isinstance(action, str) else action)
    return actions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aiops_agent.provision.iam_policy",
        description="Print the ECS task role's IAM policy (a Terraform templatefile template).",
    )
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    text = render()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    missing = unclassified()
    if missing:
        print(
            "warning: granted on '*' until classified in aiops_agent/provision/iam_policy.py "
            f"ACTION_SCOPES: {', '.join(missing)}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
