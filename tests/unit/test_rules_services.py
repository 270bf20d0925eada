"""Rules beyond EC2 instances, on events parsed from hand-made payloads: every plan uses the
action contract's names and params and carries the region; notify-only verdicts clear the bar."""

from __future__ import annotations

from typing import Any

import pytest

from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.domain.models import Analysis, Classification
from aiops_agent.intake.normalize import parse_event
from tests.unit.test_intake import ct_record
from tests.unit.test_intake_services import envelope

rules = RulesAnalyzer()


def judge(body: dict[str, Any], analyzer: RulesAnalyzer = rules) -> Analysis:
    (event,) = parse_event(body)
    return analyzer.judge(event)


def plan(analysis: Analysis) -> list[tuple[str, dict[str, Any]]]:
    return [(s.action, s.params) for s in analysis.plan]


def call(source: str, name: str, params: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return ct_record(
        name, eventSource=f"{source}.amazonaws.com", requestParameters=params, **fields
    )


REGION = "eu-west-1"


@pytest.mark.parametrize(
    ("source", "name", "params", "rtype", "rid"),
    [
        ("lambda", "DeleteFunction20150331", {"functionName": "orders"}, "lambda", "orders"),
        ("dynamodb", "DeleteTable", {"tableName": "Music"}, "dynamodb", "Music"),
        ("s3", "DeleteBucket", {"bucketName": "logs"}, "s3", "logs"),
    ],
)
def test_deletions_are_restored_from_iac(
    source: str, name: str, params: dict[str, Any], rtype: str, rid: str
) -> None:
    analysis = judge(call(source, name, params))
    assert analysis.classification is Classification.FAILURE
    assert plan(analysis) == [
        ("iac.restore", {"resource_type": rtype, "resource_id": rid, "region": REGION})
    ]


def test_deleting_one_lambda_version_is_not_a_deletion() -> None:
    analysis = judge(call("lambda", "DeleteFunction", {"functionName": "f", "qualifier": "3"}))
    assert analysis.classification is Classification.NORMAL
    assert "version 3" in analysis.reasons[0]


def test_bucket_policy_change_is_tampering_restored_from_iac() -> None:
    analysis = judge(call("s3", "PutBucketPolicy", {"bucketName": "logs", "bucketPolicy": {}}))
    assert analysis.classification is Classification.TAMPERING
    assert plan(analysis) == [
        ("iac.restore", {"resource_type": "s3", "resource_id": "logs", "region": REGION})
    ]


def test_an_overwritten_parameter_gets_its_value_back() -> None:
    body = call(
        "ssm",
        "PutParameter",
        {"name": "/app/db", "overwrite": True},
        responseElements={"version": 4},
    )
    analysis = judge(body)
    assert analysis.classification is Classification.TAMPERING
    assert plan(analysis) == [
        ("ssm.restore_parameter", {"name": "/app/db", "bad_version": 4, "region": REGION})
    ]


@pytest.mark.parametrize("response", [{"version": 1}, None])
def test_a_new_parameter_is_normal(response: Any) -> None:
    analysis = judge(call("ssm", "PutParameter", {"name": "/app/new"}, responseElements=response))
    assert analysis.classification is Classification.NORMAL
    assert analysis.plan == ()


def test_a_deleted_parameter_is_restored_from_iac() -> None:
    analysis = judge(call("ssm", "DeleteParameter", {"name": "/app/db"}))
    assert analysis.classification is Classification.TAMPERING
    assert plan(analysis) == [
        ("iac.restore", {"resource_type": "ssm", "resource_id": "/app/db", "region": REGION})
    ]


@pytest.mark.parametrize(
    ("operation", "classification", "action"),
    [
        ("Update", Classification.TAMPERING, "ssm.restore_parameter"),
        ("Delete", Classification.TAMPERING, "iac.restore"),
        ("Create", Classification.NORMAL, None),
        ("LabelParameterVersion", Classification.NORMAL, None),
    ],
)
def test_parameter_store_change(
    operation: str, classification: Classification, action: str | None
) -> None:
    body = envelope("aws.ssm", "Parameter Store Change", {"operation": operation, "name": "/p"})
    analysis = judge(body)
    assert analysis.classification is classification
    assert [s.action for s in analysis.plan] == ([action] if action else [])
    assert all(s.params["region"] == REGION for s in analysis.plan)


def test_world_open_ingress_is_revoked_rule_by_rule() -> None:
    params = {
        "groupId": "sg-0abc",
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}, {"cidrIp": "10.0.0.0/8"}]},
                    "ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}]},
                }
            ]
        },
    }
    analysis = judge(ct_record("AuthorizeSecurityGroupIngress", requestParameters=params))
    assert analysis.classification is Classification.TAMPERING
    base = {"group_id": "sg-0abc", "ip_protocol": "tcp", "from_port": 22, "to_port": 22}
    assert plan(analysis) == [
        ("ec2.revoke_ingress", {**base, "cidr": "0.0.0.0/0", "region": REGION}),
        ("ec2.revoke_ingress", {**base, "cidr": "::/0", "region": REGION}),
    ]


def test_private_ingress_is_normal() -> None:
    params = {"groupId": "sg-1", "cidrIp": "10.1.0.0/16", "ipProtocol": "tcp", "fromPort": 443}
    analysis = judge(ct_record("AuthorizeSecurityGroupIngress", requestParameters=params))
    assert analysis.classification is Classification.NORMAL


@pytest.mark.parametrize(
    ("source", "name", "params"),
    [
        ("lambda", "UpdateFunctionCode20150331v2", {"functionName": "f"}),
        ("iam", "AttachRolePolicy", {"roleName": "web", "policyArn": "arn:aws:iam::aws:policy/x"}),
        ("cloudtrail", "StopLogging", {"name": "main"}),
        ("events", "DisableRule", {"name": "aiops-intake"}),
        ("dynamodb", "UpdateContinuousBackups", {"tableName": "Music"}),
        ("s3", "DeleteBucketPublicAccessBlock", {"bucketName": "logs"}),
        ("kms", "PutKeyPolicy", {"keyId": "k-1"}),
    ],
)
def test_configuration_changes_are_tampering_to_notify(
    source: str, name: str, params: dict[str, Any]
) -> None:
    analysis = judge(call(source, name, params))
    assert analysis.classification is Classification.TAMPERING
    assert analysis.plan == ()
    assert analysis.confidence >= 0.8  # notified, not parked for review
    assert analysis.reasons[-1].endswith("notify only")


def test_rds_deletion_is_notify_only_and_critical_without_snapshot() -> None:
    params = {"dBInstanceIdentifier": "prod", "skipFinalSnapshot": True}
    analysis = judge(call("rds", "DeleteDBInstance", params))
    assert analysis.classification is Classification.FAILURE
    assert analysis.plan == ()
    assert analysis.severity.value == "CRITICAL"


def test_resource_unknown_never_gets_a_plan() -> None:
    analysis = judge(call("s3", "DeleteBucket", {}))
    assert analysis.classification is Classification.FAILURE
    assert analysis.plan == ()
    assert "does not name the resource" in analysis.reasons[-1]


# ---------------------------------------------------------------- the recovery project


CODEBUILD_ROLE = "arn:aws:sts::123456789012:assumed-role/aiops-recovery-codebuild/AWSCodeBuild-1f2e"


def test_our_codebuild_role_is_the_agent_itself() -> None:
    analyzer = RulesAnalyzer(codebuild_project="aiops-recovery")
    body = call(
        "lambda",
        "DeleteFunction",
        {"functionName": "f"},
        userIdentity={"type": "AssumedRole", "arn": CODEBUILD_ROLE},
    )
    analysis = judge(body, analyzer)
    assert analysis.classification is Classification.NORMAL
    assert "recovery project aiops-recovery" in analysis.reasons[0]


def test_our_codebuild_role_with_a_path_in_the_session_issuer() -> None:
    analyzer = RulesAnalyzer(codebuild_project="aiops-recovery", own_principals=["arn:x:agent"])
    identity = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::1:assumed-role/renamed/AWSCodeBuild-1",
        "sessionContext": {
            "sessionIssuer": {"arn": "arn:aws:iam::1:role/service-role/aiops-recovery-codebuild"}
        },
    }
    body = call("s3", "DeleteBucket", {"bucketName": "b"}, userIdentity=identity)
    assert judge(body, analyzer).classification is Classification.NORMAL


def test_another_projects_codebuild_role_is_not_ours() -> None:
    analyzer = RulesAnalyzer(codebuild_project="aiops-recovery")
    identity = {"type": "AssumedRole", "arn": CODEBUILD_ROLE.replace("aiops-recovery", "other")}
    body = call("s3", "DeleteBucket", {"bucketName": "b"}, userIdentity=identity)
    assert judge(body, analyzer).classification is Classification.FAILURE
    assert (
        judge(call("s3", "DeleteBucket", {"bucketName": "b"})).classification
        is Classification.FAILURE
    )


def test_codebuild_user_agent_counts_only_while_the_identity_is_unknown() -> None:
    agent = "aws-cli/2 exec-env/CODEBUILD project/aiops-recovery"
    body = call("s3", "DeleteBucket", {"bucketName": "b"}, userAgent=agent)
    unknown = RulesAnalyzer(codebuild_project="aiops-recovery")
    known = RulesAnalyzer(codebuild_project="aiops-recovery", own_principals=["arn:x:agent"])
    assert judge(body, unknown).classification is Classification.NORMAL
    assert judge(body, known).classification is Classification.FAILURE
    assert judge(body).classification is Classification.FAILURE  # no project configured


# ---------------------------------------------------------------- state events


def _alarm(state: str, previous: str = "OK", **state_extra: Any) -> dict[str, Any]:
    detail = {
        "alarmName": "cpu-high",
        "state": {"value": state, "reason": "Threshold Crossed", **state_extra},
        "previousState": {"value": previous},
        "configuration": {"metrics": []},
    }
    return envelope("aws.cloudwatch", "CloudWatch Alarm State Change", detail)


def test_alarm_firing_is_an_anomaly_to_notify() -> None:
    analysis = judge(_alarm("ALARM"))
    assert analysis.classification is Classification.ANOMALY
    assert analysis.plan == () and analysis.confidence >= 0.8


def test_alarm_back_to_ok_is_normal_and_resolves() -> None:
    (event,) = parse_event(_alarm("OK", "ALARM"))
    assert rules.judge(event).classification is Classification.NORMAL
    assert event.details["resolves"] is True


def test_suppressed_alarm_is_respected() -> None:
    analysis = judge(_alarm("ALARM", actionsSuppressedBy="Alarm"))
    assert analysis.classification is Classification.NORMAL
    assert "suppressed" in analysis.reasons[0]


def _task(
    status: str, codes: list[int], stop_code: str = "EssentialContainerExited"
) -> dict[str, Any]:
    detail = {
        "taskArn": "arn:aws:ecs:eu-west-1:1:task/prod/abc",
        "lastStatus": status,
        "desiredStatus": "STOPPED",
        "stopCode": stop_code,
        "containers": [{"name": f"c{i}", "exitCode": c} for i, c in enumerate(codes)],
    }
    return envelope("aws.ecs", "ECS Task State Change", detail)


@pytest.mark.parametrize(
    ("codes", "stop_code", "expected"),
    [
        ([0, 0], "EssentialContainerExited", Classification.NORMAL),
        ([0, 137], "EssentialContainerExited", Classification.FAILURE),
        ([], "TaskFailedToStart", Classification.FAILURE),
        ([], "SpotInterruption", Classification.ANOMALY),
        ([], "ServiceSchedulerInitiated", Classification.NORMAL),
    ],
)
def test_a_stopped_task_is_judged_by_its_exit_codes(
    codes: list[int], stop_code: str, expected: Classification
) -> None:
    analysis = judge(_task("STOPPED", codes, stop_code))
    assert analysis.classification is expected
    assert analysis.plan == ()


def test_an_impaired_service_plans_a_new_deployment_with_approval() -> None:
    detail = {"eventType": "WARN", "eventName": "SERVICE_TASK_START_IMPAIRED"}
    body = envelope(
        "aws.ecs",
        "ECS Service Action",
        detail,
        resources=["arn:aws:ecs:eu-west-1:1:service/prod/api"],
    )
    analysis = judge(body)
    assert analysis.classification is Classification.FAILURE
    assert analysis.requires_approval
    assert plan(analysis) == [
        ("ecs.force_new_deployment", {"cluster": "prod", "service": "api", "region": REGION})
    ]


def test_a_retiring_instance_plans_a_stop_start_with_approval() -> None:
    detail = {
        "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
        "eventTypeCategory": "scheduledChange",
        "service": "EC2",
        "affectedEntities": [{"entityValue": "i-0abc1234def567890"}],
    }
    analysis = judge(envelope("aws.health", "AWS Health Event", detail))
    assert analysis.classification is Classification.FAILURE
    assert analysis.requires_approval
    assert plan(analysis) == [
        ("ec2.stop_start_instances", {"instance_id": "i-0abc1234def567890", "region": REGION})
    ]


def test_a_closed_health_event_is_normal_and_resolves() -> None:
    detail = {
        "eventTypeCode": "AWS_EC2_INSTANCE_STORE_DRIVE_PERFORMANCE_DEGRADED",
        "eventTypeCategory": "issue",
        "statusCode": "closed",
        "service": "EC2",
        "affectedEntities": [{"entityValue": "i-0abc1234def567890"}],
    }
    (event,) = parse_event(envelope("aws.health", "AWS Health Event", detail))
    assert rules.judge(event).classification is Classification.NORMAL
    assert event.details["resolves"] is True


@pytest.mark.parametrize(
    ("detail_type", "expected"),
    [
        ("EC2 Instance Launch Unsuccessful", Classification.FAILURE),
        ("EC2 Instance Terminate Successful", Classification.NORMAL),
        ("EC2 Instance-launch Lifecycle Action", Classification.NORMAL),
    ],
)
def test_autoscaling_events(detail_type: str, expected: Classification) -> None:
    detail = {"AutoScalingGroupName": "web", "EC2InstanceId": "i-0abc1234", "StatusCode": "x"}
    analysis = judge(envelope("aws.autoscaling", detail_type, detail))
    assert analysis.classification is expected
    assert analysis.plan == ()
