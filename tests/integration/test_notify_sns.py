"""The notifiers: SNS publish received through a subscribed SQS queue; subject sanitizing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog

from aiops_agent.aws.clients import AwsClients
from aiops_agent.notify.sns import (
    DEFAULT_SUBJECT,
    MAX_ATTRIBUTES,
    MAX_MESSAGE_BYTES,
    LogNotifier,
    SnsNotifier,
    message_attributes,
    sanitize_subject,
    truncate_message,
)


async def _subscribed_queue(aws: AwsClients, unique: str) -> tuple[str, str]:
    """(topic arn, queue url) with the queue subscribed to the topic (standard envelope)."""
    sns = await aws.client("sns")
    sqs = await aws.client("sqs")
    topic_arn = (await sns.create_topic(Name=f"notes-{unique}"))["TopicArn"]
    queue_url = (await sqs.create_queue(QueueName=f"notes-{unique}"))["QueueUrl"]
    attrs = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    await sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=attrs["Attributes"]["QueueArn"]
    )
    return topic_arn, queue_url


async def _receive_one(aws: AwsClients, queue_url: str) -> dict[str, Any]:
    sqs = await aws.client("sqs")
    resp = await sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2, MaxNumberOfMessages=1)
    messages = resp.get("Messages", [])
    assert len(messages) == 1
    body: dict[str, Any] = json.loads(messages[0]["Body"])
    return body


async def test_publish_reaches_a_subscribed_queue(aws: AwsClients, unique: str) -> None:
    topic_arn, queue_url = await _subscribed_queue(aws, unique)
    notifier = SnsNotifier(aws, topic_arn)

    await notifier.publish(
        "[COMPLETED] ec2 i-0abc: instance restarted",
        "Incident inc-1\nstate COMPLETED",
        {"incident_id": "inc-1", "workflow_state": "COMPLETED"},
    )

    body = await _receive_one(aws, queue_url)
    assert body["Type"] == "Notification"
    assert body["TopicArn"] == topic_arn
    assert body["Subject"] == "[COMPLETED] ec2 i-0abc: instance restarted"
    assert body["Message"] == "Incident inc-1\nstate COMPLETED"
    assert body["MessageAttributes"]["incident_id"] == {"Type": "String", "Value": "inc-1"}
    assert body["MessageAttributes"]["workflow_state"]["Value"] == "COMPLETED"


async def test_long_multiline_subject_is_sanitized(aws: AwsClients, unique: str) -> None:
    topic_arn, queue_url = await _subscribed_queue(aws, unique)
    subject = "Incident\non  ec2\t\u00e9t\u00e9 " + "x" * 200

    await SnsNotifier(aws, topic_arn).publish(subject, "body")

    body = await _receive_one(aws, queue_url)
    assert body["Subject"] == sanitize_subject(subject)
    assert body["Subject"].startswith("Incident on ec2 ete x")
    assert len(body["Subject"]) == 99 and body["Subject"].endswith("...")


async def test_no_topic_logs_instead_of_failing(aws: AwsClients) -> None:
    notifier = SnsNotifier(aws, None)
    with structlog.testing.capture_logs() as logs:
        await notifier.publish("subject", "message", {"k": "v"})
    assert [e["event"] for e in logs] == ["notify.logged"]
    assert logs[0]["subject"] == "subject"
    assert logs[0]["log_level"] == "info"


async def test_log_notifier_keeps_the_last_notifications() -> None:
    notifier = LogNotifier(keep=2)
    for n in range(3):
        await notifier.publish(f"s{n}\n", "m", {"n": str(n)})
    assert [(s.subject, s.attributes["n"]) for s in notifier.sent] == [("s1", "1"), ("s2", "2")]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain subject", "plain subject"),
        ("two\nlines\r\n", "two lines"),
        ("caf\u00e9 \u2603 ok", "cafe ok"),
        ("\x00\x07bell", "bell"),
        ("", DEFAULT_SUBJECT),
        ("\n\t ", DEFAULT_SUBJECT),
    ],
)
def test_sanitize_subject(raw: str, clean: str) -> None:
    assert sanitize_subject(raw) == clean


def test_sanitize_subject_length() -> None:
    assert sanitize_subject("a" * 99) == "a" * 99
    assert len(sanitize_subject("a" * 100)) == 99


def test_message_attributes_drop_what_sns_refuses() -> None:
    attrs = message_attributes(
        {"ok": "1", "AWS.x": "2", "bad name": "3", "empty": "", "a..b": "4", "dot.": "5"}
    )
    assert attrs == {"ok": {"DataType": "String", "StringValue": "1"}}
    many = message_attributes({f"k{n}": "v" for n in range(MAX_ATTRIBUTES + 3)})
    assert len(many) == MAX_ATTRIBUTES


def test_truncate_message() -> None:
    assert truncate_message("short") == "short"
    assert truncate_message("") == " "
    cut = truncate_message("\u00e9" * MAX_MESSAGE_BYTES)
    assert len(cut.encode()) <= MAX_MESSAGE_BYTES
    assert cut.endswith("[truncated]")
