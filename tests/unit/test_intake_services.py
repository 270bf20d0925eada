"""Intake beyond EC2 instances: per-service CloudTrail calls, security groups, SSM, alarms,
Health, ECS, Auto Scaling, S3 object and RDS events, unknown kinds."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.envelope import InvalidEvent
from aiops_agent.intake.normalize import parse_event
from aiops_agent.intake.registry import EVENT_NORMALIZERS
from tests.unit.test_intake import ct_record, sample


def one(body: Any) -> NormalizedEvent:
    events = parse_event(body)
    assert len(events) == 1
    return events[0]


def envelope(source: str, detail_type: str, detail: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": "0",
        "id": "ev-7",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-11-25T10:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }
    body.update(extra)
    return body


# ---------------------------------------------------------------- CloudTrail by service


@pytest.mark.parametrize(
    ("source", "name", "params", "expected"),
    [
        ("lambda", "DeleteFunction20150331", {"functionName": "orders"}, ("lambda", "orders")),
        (
            "lambda",
            "UpdateFunctionCode20150331v2",
            {"functionName": "123456789012:function:orders:live"},
            ("lambda", "orders"),
        ),
        (
            "dynamodb",
            "DeleteTable",
            {"tableName": "arn:aws:dynamodb:r:1:table/Music"},
            ("dynamodb", "Music"),
        ),
        ("s3", "PutBucketPolicy", {"bucketName": "logs", "bucketPolicy": {}}, ("s3", "logs")),
        ("rds", "DeleteDBInstance", {"dBInstanceIdentifier": "prod-db"}, ("rds", "prod-db")),
        (
            "iam",
            "AttachRolePolicy",
            {"roleName": "web", "policyArn": "arn:aws:iam::aws:policy/Admin"},
            ("iam", "web"),
        ),
        (
            "ecs",
            "UpdateService",
            {"cluster": "prod", "service": "api", "desiredCount": 0},
            ("ecs", "prod/api"),
        ),
        (
            "cloudtrail",
            "StopLogging",
            {"name": "arn:aws:cloudtrail:r:1:trail/main"},
            ("cloudtrail", "main"),
        ),
        ("events", "DisableRule", {"name": "aiops-intake"}, ("events", "aiops-intake")),
    ],
)
def test_service_calls_name_their_resource(
    source: str, name: str, params: dict[str, Any], expected: tuple[str, str]
) -> None:
    event = one(ct_record(name, eventSource=f"{source}.amazonaws.com", requestParameters=params))
    assert (event.resource_type, event.resource_id) == expected


def test_lambda_qualifier_is_kept() -> None:
    record = ct_record(
        "DeleteFunction20150331",
        eventSource="lambda.amazonaws.com",
        requestParameters={"functionName": "arn:aws:lambda:eu-west-1:123456789012:function:f:3"},
    )
    event = one(record)
    assert (event.resource_id, event.action, event.details["qualifier"]) == (
        "f",
        "DeleteFunction",
        "3",
    )


def test_a_list_of_names_gives_one_event_each() -> None:
    record = ct_record(
        "DeleteAlarms",
        eventSource="monitoring.amazonaws.com",
        requestParameters={"alarmNames": ["a", "b", "a2"]},
    )
    events = parse_event(record)
    assert [(e.resource_type, e.resource_id) for e in events] == [
        ("cloudwatch", "a"),
        ("cloudwatch", "b"),
        ("cloudwatch", "a2"),
    ]
    assert all(e.details["resources_in_call"] == 3 for e in events)


def test_a_missing_event_source_is_inferred_from_the_call_name() -> None:
    event = one(sample("ct_deletebucket_bucketnotempty_panther"))
    assert event.source == "aws.s3"
    assert event.resource_type == "s3"
    assert event.details["event_source_inferred"] is True


def test_a_denied_call_names_its_resource_from_the_error_message() -> None:
    event = one(sample("ct_getrole_accessdenied_panther"))
    assert (event.resource_type, event.resource_id) == ("iam", "FooBar")


# ---------------------------------------------------------------- SSM


def test_put_parameter_records_overwrite_and_version() -> None:
    record = ct_record(
        "PutParameter",
        eventSource="ssm.amazonaws.com",
        requestParameters={"name": "/app/db", "value": "x", "overwrite": True, "type": "String"},
        responseElements={"version": 7, "tier": "Standard"},
    )
    event = one(record)
    assert (event.resource_type, event.resource_id) == ("ssm", "/app/db")
    assert event.details["overwrite"] is True and event.details["version"] == 7
    assert "x" not in str(event.details.get("request", ""))


def test_the_drill_put_parameter_is_version_one() -> None:
    event = one(sample("ct_putparameter_trimmed_synthetic"))
    assert event.details["version"] == 1 and event.details["overwrite"] is False


def test_delete_parameters_counts_only_what_was_deleted() -> None:
    record = ct_record(
        "DeleteParameters",
        eventSource="ssm.amazonaws.com",
        requestParameters={"names": ["/a", "/b", "/c"]},
        responseElements={"deletedParameters": ["/a", "/c"], "invalidParameters": ["/b"]},
    )
    assert [e.resource_id for e in parse_event(record)] == ["/a", "/c"]


def test_parameter_store_change_names_the_parameter() -> None:
    event = one(sample("ssm_param_update_ssmdocs"))
    assert (event.resource_type, event.resource_id, event.action) == (
        "ssm",
        "MyExampleParameter",
        "Update",
    )
    failed = one(sample("ssm_param_aliases_0_ssmdocs"))
    assert failed.error_code == "Unable to Describe Resource" and not failed.succeeded


def test_parameter_store_change_takes_a_hierarchical_name_from_the_arn() -> None:
    body = envelope(
        "aws.ssm",
        "Parameter Store Change",
        {"operation": "Delete"},
        resources=["arn:aws:ssm:eu-west-1:123456789012:parameter/app/db"],
    )
    assert one(body).resource_id == "/app/db"


# ---------------------------------------------------------------- security groups


def _ingress(params: dict[str, Any], response: Any = None) -> NormalizedEvent:
    return one(
        ct_record(
            "AuthorizeSecurityGroupIngress",
            requestParameters=params,
            responseElements=response,
        )
    )


def test_world_open_ingress_rules_are_listed() -> None:
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
                },
                {"ipProtocol": "-1", "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}},
            ]
        },
    }
    event = _ingress(params)
    assert (event.resource_type, event.resource_id) == ("ec2", "sg-0abc")
    assert event.details["rules_in_call"] == 4
    assert event.details["world_open_rules"] == [
        {"cidr": "0.0.0.0/0", "ip_protocol": "tcp", "from_port": 22, "to_port": 22},
        {"cidr": "::/0", "ip_protocol": "tcp", "from_port": 22, "to_port": 22},
        {"cidr": "0.0.0.0/0", "ip_protocol": "-1"},
    ]


def test_legacy_ingress_and_group_id_from_the_response() -> None:
    response = {"securityGroupRuleSet": {"items": [{"groupId": "sg-0def"}]}}
    event = _ingress(
        {
            "groupName": "default",
            "ipProtocol": "tcp",
            "fromPort": "3389",
            "toPort": "3389",
            "cidrIp": "0.0.0.0/0",
        },
        response,
    )
    assert event.resource_id == "sg-0def"
    assert event.details["world_open_rules"] == [
        {"cidr": "0.0.0.0/0", "ip_protocol": "tcp", "from_port": 3389, "to_port": 3389}
    ]


def test_private_ingress_has_no_world_open_rule() -> None:
    event = _ingress({"groupId": "sg-1", "cidrIp": "192.168.0.0/16", "ipProtocol": "tcp"})
    assert event.details["world_open_rules"] == []


# ---------------------------------------------------------------- events


def test_alarm_state_change_is_about_the_alarm_and_notes_what_it_watches() -> None:
    event = one(sample("cw_alarm_single_metric_cpu_cwdocs"))
    assert (event.resource_type, event.resource_id, event.action) == (
        "cloudwatch",
        "ServerCpuTooHigh",
        "state:ALARM",
    )
    assert event.details["monitored"] == {
        "resource_type": "ec2",
        "resource_id": "i-12345678901234567",
    }
    assert "resolves" not in event.details


def test_alarm_back_to_ok_resolves() -> None:
    event = one(sample("cw_alarm_ok_recovered_mechanicalrock"))
    assert event.details["resolves"] is True
    assert event.details["monitored"]["resource_type"] == "lambda"


def test_suppressed_composite_alarm_keeps_the_suppression() -> None:
    event = one(sample("cw_alarm_composite_suppressed_cwdocs"))
    assert event.details["actions_suppressed_by"] == "WaitPeriod"
    assert event.details["composite"] is True


def test_health_retirement_is_about_the_instance() -> None:
    event = one(sample("health_ec2_retirement_custodian"))
    assert (event.resource_type, event.resource_id) == ("ec2", "i-00ddbf07ce6372082")
    assert event.details["category"] == "scheduledchange"


def test_health_without_entities_is_about_the_health_event() -> None:
    event = one(sample("health_ec2_maintenance_scheduled_insight"))
    assert event.resource_type == "health"
    assert event.resource_id.startswith("arn:aws:health:")
    assert event.details["category"] == "accountnotification"


def test_health_summary_entities_keep_their_first_field() -> None:
    events = parse_event(sample("health_capacity_reservation_1_ec2docs"))
    assert [e.resource_id for e in events] == ["cr-01234567890abcdef", "cr-09876543210fedcba"]


def test_ecs_ids_are_cluster_scoped() -> None:
    service = one(sample("ecs_service_task_start_impaired_ecsdocs"))
    assert (service.resource_type, service.resource_id) == ("ecs", "default/servicetest")
    assert (service.details["cluster"], service.details["service"]) == ("default", "servicetest")
    task = one(sample("ecs_task_stopped_exit0_synthetic"))
    assert task.resource_id == "batch-cluster/0f6b2c9e4d3a41b7a8e5c1d2f3a4b5c6"
    assert task.details["containers"][0]["exit_code"] == 0


def test_autoscaling_launch_failure_is_about_the_group() -> None:
    event = one(sample("asg_launch_unsuccessful_custodian"))
    assert (event.resource_type, event.resource_id) == ("autoscaling", "CustodianTest")
    assert "instance_id" not in event.details  # EC2InstanceId is ""
    assert not event.succeeded


def test_s3_object_event_is_about_its_bucket() -> None:
    event = one(sample("s3_object_deleted_powertools"))
    assert (event.resource_type, event.resource_id) == ("s3", "example-bucket")
    assert event.details["key"] == "IMG_m7fzo3.jpg"


def test_rds_instance_event() -> None:
    detail = {
        "EventCategories": ["failure"],
        "SourceType": "DB_INSTANCE",
        "SourceArn": "arn:aws:rds:eu-west-1:123456789012:db:prod-db",
        "Message": "DB instance shutdown",
        "EventID": "RDS-EVENT-0004",
    }
    event = one(envelope("aws.rds", "RDS DB Instance Event", detail))
    assert (event.resource_type, event.resource_id, event.action) == (
        "rds",
        "prod-db",
        "RDS-EVENT-0004",
    )
    assert event.details["categories"] == ["failure"]


@pytest.mark.parametrize(
    ("source", "detail_type"),
    [
        ("my.app", "EC2 Instance State-change Notification"),
        ("evil.aws", "Something New"),
    ],
)
def test_a_kind_from_outside_aws_is_unsupported(source: str, detail_type: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        parse_event(
            envelope(source, detail_type, {"state": "stopped", "instance-id": "i-0abc1234"})
        )
    assert err.value.reason == "unsupported"
    assert len(str(err.value)) < 300


def test_every_bootstrap_detail_type_has_a_normalizer() -> None:
    from aiops_agent.provision.bootstrap import DETAIL_TYPES, EVENT_SOURCES

    registered = {detail_type for _, detail_type in EVENT_NORMALIZERS}
    assert set(DETAIL_TYPES) <= registered
    for source, detail_type in EVENT_NORMALIZERS:
        assert source == "*" or source in EVENT_SOURCES, (source, detail_type)


@pytest.mark.parametrize(
    "name",
    [
        "cw_alarm_single_metric_cpu_cwdocs",
        "health_ec2_retirement_custodian",
        "ecs_task_running_ecsdocs",
    ],
)
def test_a_missing_key_field_is_rejected_not_crashed(name: str) -> None:
    body = copy.deepcopy(sample(name))
    body["detail"] = {}
    body["resources"] = []
    with pytest.raises(InvalidEvent) as err:
        parse_event(body)
    assert err.value.reason == "missing_field"
