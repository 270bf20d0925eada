"""`bootstrap` against the moto server: idempotent, and the rule really feeds the queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.provision.bootstrap import (
    BootstrapError,
    BootstrapResult,
    bootstrap,
    event_pattern,
)
from aiops_agent.settings import Settings


def _settings(unique: str, **extra: object) -> Settings:
    return Settings(
        incident_table=f"inc-{unique}",
        patterns_table=f"pat-{unique}",
        codebuild_project=f"recovery-{unique}",
        **extra,  # type: ignore[arg-type]
    )


async def _run(aws: AwsClients, settings: Settings, unique: str) -> BootstrapResult:
    return await bootstrap(
        aws,
        settings,
        queue_name=f"events-{unique}",
        rule_name=f"rule-{unique}",
        topic_name=f"notes-{unique}",
    )


async def test_bootstrap_twice_then_an_event_reaches_the_queue(
    aws: AwsClients, unique: str
) -> None:
    settings = _settings(unique)

    first = await _run(aws, settings, unique)
    second = await _run(aws, settings, unique)

    assert first.found == []
    assert set(first.created) >= {
        f"sqs:events-{unique}-dlq",
        f"sqs:events-{unique}",
        f"events:rule/rule-{unique}",
        f"dynamodb:inc-{unique}",
        f"dynamodb:pat-{unique}",
        f"sns:notes-{unique}",
        f"iam:role/recovery-{unique}-codebuild",
        f"codebuild:recovery-{unique}",
    }
    assert second.created == []
    # The role is only looked at when the project is missing: found projects need nothing more.
    assert set(second.found) == set(first.created) - {f"iam:role/recovery-{unique}-codebuild"}
    assert second.to_json() == first.to_json()

    out = first.to_json()
    assert set(out) == {
        "queue_url",
        "dead_letter_queue_url",
        "sns_topic_arn",
        "incident_table",
        "patterns_table",
        "codebuild_project",
    }
    assert out["incident_table"] == f"inc-{unique}"
    assert out["codebuild_project"] == f"recovery-{unique}"
    assert str(out["sns_topic_arn"]).endswith(f":notes-{unique}")
    json.dumps(out)  # serializable as is

    sqs = await aws.client("sqs")
    attrs = (await sqs.get_queue_attributes(QueueUrl=first.queue_url, AttributeNames=["All"]))[
        "Attributes"
    ]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 5
    assert redrive["deadLetterTargetArn"].endswith(f":events-{unique}-dlq")
    assert attrs["VisibilityTimeout"] == str(settings.visibility_timeout_seconds)
    statement = json.loads(attrs["Policy"])["Statement"]
    assert [s["Principal"] for s in statement] == [{"Service": "events.amazonaws.com"}]
    assert statement[0]["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(f"rule/rule-{unique}")

    codebuild = await aws.client("codebuild")
    projects = (await codebuild.batch_get_projects(names=[f"recovery-{unique}"]))["projects"]
    assert projects[0]["source"]["type"] == "NO_SOURCE"
    assert projects[0]["serviceRole"].endswith(f":role/recovery-{unique}-codebuild")

    events = await aws.client("events")
    put = await events.put_events(
        Entries=[
            {
                "Source": "aws.ec2",
                "DetailType": "EC2 Instance State-change Notification",
                "Detail": json.dumps({"instance-id": f"i-{unique}", "state": "stopped"}),
                "Resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/i-{unique}"],
                "Time": datetime.now(UTC),
            }
        ]
    )
    assert put["FailedEntryCount"] == 0
    resp = await sqs.receive_message(
        QueueUrl=first.queue_url, WaitTimeSeconds=2, MaxNumberOfMessages=10
    )
    bodies = [json.loads(m["Body"]) for m in resp.get("Messages", [])]
    mine = [b for b in bodies if b["detail"].get("instance-id") == f"i-{unique}"]
    assert len(mine) == 1
    assert mine[0]["source"] == "aws.ec2"
    assert mine[0]["detail-type"] == "EC2 Instance State-change Notification"


async def test_unmatched_event_does_not_reach_the_queue(aws: AwsClients, unique: str) -> None:
    result = await _run(aws, _settings(unique), unique)
    events = await aws.client("events")
    await events.put_events(
        Entries=[
            {
                "Source": "aws.s3",
                "DetailType": "Object Created",  # S3 object writes would flood the queue
                "Detail": json.dumps({"bucket": {"name": f"b-{unique}"}}),
            }
        ]
    )
    sqs = await aws.client("sqs")
    resp = await sqs.receive_message(QueueUrl=result.queue_url, WaitTimeSeconds=1)
    assert resp.get("Messages", []) == []


async def test_configured_queue_and_topic_are_used_as_found(aws: AwsClients, unique: str) -> None:
    sqs = await aws.client("sqs")
    sns = await aws.client("sns")
    dlq_url = (await sqs.create_queue(QueueName=f"own-{unique}-dlq"))["QueueUrl"]
    dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    queue_url = (
        await sqs.create_queue(
            QueueName=f"own-{unique}",
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
            },
        )
    )["QueueUrl"]
    other = {"Sid": "keep-me", "Effect": "Allow", "Principal": "*", "Action": "sqs:GetQueueUrl"}
    await sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [other]})},
    )
    topic_arn = (await sns.create_topic(Name=f"own-{unique}"))["TopicArn"]
    settings = _settings(unique, queue_url=queue_url, sns_topic_arn=topic_arn)

    result = await _run(aws, settings, unique)

    assert result.queue_url == queue_url
    assert result.dead_letter_queue_url == dlq_url
    assert result.sns_topic_arn == topic_arn
    assert {f"sqs:own-{unique}", f"sns:own-{unique}"} <= set(result.found)
    assert not any(c.startswith(("sqs:", "sns:")) for c in result.created)
    policy = json.loads(
        (await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"]))[
            "Attributes"
        ]["Policy"]
    )
    assert [s["Sid"] for s in policy["Statement"]] == [
        "keep-me",
        f"aiops-eventbridge-rule-{unique}",
    ]


async def test_configured_topic_that_does_not_exist_is_an_error(
    aws: AwsClients, unique: str
) -> None:
    settings = _settings(unique, sns_topic_arn=f"arn:aws:sns:us-east-1:123456789012:no-{unique}")
    with pytest.raises(BootstrapError, match="AIOPS_SNS_TOPIC_ARN"):
        await _run(aws, settings, unique)


def test_event_pattern_covers_the_consumed_sources() -> None:
    pattern = event_pattern()
    assert {"aws.ec2", "aws.ssm", "aws.health", "aws.cloudwatch", "aws.ecs"} <= set(
        pattern["source"]
    )
    assert "EC2 Instance State-change Notification" in pattern["detail-type"]
    assert "AWS API Call via CloudTrail" in pattern["detail-type"]


async def test_stale_rule_pattern_is_updated_and_found(aws: AwsClients, unique: str) -> None:
    events = await aws.client("events")
    await events.put_rule(
        Name=f"rule-{unique}", EventPattern=json.dumps({"source": ["aws.ec2"]}), State="ENABLED"
    )

    result = await _run(aws, _settings(unique), unique)

    assert f"events:rule/rule-{unique}" in result.found
    rule = await events.describe_rule(Name=f"rule-{unique}")
    assert json.loads(rule["EventPattern"]) == event_pattern()
