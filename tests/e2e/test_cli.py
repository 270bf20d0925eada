"""The command line against the moto server: bootstrap, send-event, incidents list/show/approve."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from aiops_agent.app import build_clients, build_components
from aiops_agent.cli.main import main
from aiops_agent.intake.envelope import parse_event
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import load_settings


@pytest.fixture
def env(
    moto_endpoint: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    values = {
        "AIOPS_AWS_ENDPOINT_URL": moto_endpoint,
        "AIOPS_INCIDENT_TABLE": f"inc-{unique}",
        "AIOPS_PATTERNS_TABLE": f"pat-{unique}",
        "AIOPS_CODEBUILD_PROJECT": f"recovery-{unique}",
        "AIOPS_AWS_MAX_ATTEMPTS": "1",
        "AIOPS_ATTRIBUTION_GRACE_SECONDS": "0",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main(list(argv))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def boto(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def state_change(instance_id: str, state: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"ev-{instance_id}-{state}",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"instance-id": instance_id, "state": state},
    }


def test_bootstrap_json_is_the_contract_object_and_idempotent(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    first = run_json(capsys, "bootstrap", "--json")
    assert set(first) == {
        "queue_url",
        "dead_letter_queue_url",
        "sns_topic_arn",
        "incident_table",
        "patterns_table",
        "codebuild_project",
    }
    assert first["incident_table"] == env["AIOPS_INCIDENT_TABLE"]
    assert run_json(capsys, "bootstrap", "--json") == first


def test_send_event_to_the_queue_and_through_eventbridge(
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    boot = run_json(capsys, "bootstrap", "--json")
    monkeypatch.setenv("AIOPS_QUEUE_URL", boot["queue_url"])
    sqs = boto("sqs", env["AIOPS_AWS_ENDPOINT_URL"])
    sqs.purge_queue(QueueUrl=boot["queue_url"])
    path = tmp_path / "event.json"
    path.write_text(json.dumps(state_change("i-0123456789abcdef0", "stopped")))

    assert main(["send-event", str(path)]) == 0
    assert main(["send-event", str(path), "--via-eventbridge"]) == 0
    bodies = []
    for _ in range(5):
        got = sqs.receive_message(
            QueueUrl=boot["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
        if len(bodies) >= 2:
            break
    assert len(bodies) == 2
    assert {b["detail-type"] for b in bodies} == {"EC2 Instance State-change Notification"}
    assert {b["detail"]["instance-id"] for b in bodies} == {"i-0123456789abcdef0"}


def test_send_event_with_an_unreadable_file_is_a_usage_error(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["send-event", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_incidents_list_show_and_approve(
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replayed stop event is never acted on blindly: it waits for a person to approve."""
    boot = run_json(capsys, "bootstrap", "--json")
    monkeypatch.setenv("AIOPS_QUEUE_URL", boot["queue_url"])
    ec2 = boto("ec2", env["AIOPS_AWS_ENDPOINT_URL"])
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    instance_id = instance["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance_id])

    event = state_change(instance_id, "stopped")
    event["replay-name"] = "archive-replay-1"

    async def handle() -> str:
        settings = load_settings()
        async with build_clients(settings) as clients:
            engine = build_components(settings, clients, Metrics()).engine
            (normalized,) = parse_event(json.dumps(event))
            incident = await engine.handle_event(normalized)
            assert incident is not None
            return incident.incident_id

    incident_id = asyncio.run(handle())

    listed = run_json(capsys, "incidents", "list", "--json", "--state", "AWAITING_APPROVAL")
    assert incident_id in [i["incident_id"] for i in listed]
    shown = run_json(capsys, "incidents", "show", incident_id, "--json")
    for field in (
        "incident_id",
        "event_id",
        "resource_type",
        "resource_id",
        "classification",
        "confidence",
        "workflow_state",
        "created_at",
        "updated_at",
        "recovery_actions",
        "verification",
        "timeline",
    ):
        assert field in shown, field
    assert shown["workflow_state"] == "AWAITING_APPROVAL"
    assert all(set(e) >= {"at", "state", "detail"} for e in shown["timeline"])

    assert main(["incidents", "show", incident_id]) == 0
    assert "AWAITING_APPROVAL" in capsys.readouterr().out

    assert main(["incidents", "approve", incident_id, "--by", "alice"]) == 0
    assert "PLANNING" in capsys.readouterr().out
    after = run_json(capsys, "incidents", "show", incident_id, "--json")
    assert after["workflow_state"] == "PLANNING"
    assert any("approved by alice" in e["detail"] for e in after["timeline"])

    # A second answer is refused: the review is no longer open.
    assert main(["incidents", "reject", incident_id, "--reason", "late"]) == 1
    assert "not awaiting approval" in capsys.readouterr().err
    assert main(["incidents", "show", "inc-does-not-exist"]) == 1
