"""`silence`, `freeze`, `pause`, `resume` and `status` on the command line, against moto."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from aiops_agent.app import build_clients, build_components
from aiops_agent.cli.control import UsageError, parse_duration
from aiops_agent.cli.main import main
from aiops_agent.domain.models import WorkflowState
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


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    got = main(list(argv))
    captured = capsys.readouterr()
    assert got == code, captured.err
    return captured.out if code == 0 else captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    return json.loads(run(capsys, *argv))


@pytest.fixture
def booted(env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> Any:
    boot = run_json(capsys, "bootstrap", "--json")
    monkeypatch.setenv("AIOPS_QUEUE_URL", boot["queue_url"])
    return boot


def test_silence_add_list_expire(booted: Any, capsys: pytest.CaptureFixture[str]) -> None:
    made = run_json(
        capsys,
        "silence", "add", "--match", "resource_id=i-0abc*", "--match", "tag:team=payments",
        "--duration", "2h", "--reason", "payments migration", "--json",
    )  # fmt: skip
    assert made["silence_id"].startswith("sil-")
    assert made["matchers"] == ["resource_id=i-0abc*", "tag:team=payments"]
    assert made["author"] == "arn:aws:sts::123456789012:user/moto"  # the caller, from STS
    assert made["active"] is True and made["reason"] == "payments migration"
    plain = run(capsys, "silence", "add", "--match", "region=eu-*", "--until",
                "2099-01-01T00:00:00Z", "--reason", "x")  # fmt: skip
    second = plain.strip()
    assert second.startswith("sil-")

    listed = run_json(capsys, "silence", "list", "--json")
    assert {s["silence_id"] for s in listed} == {made["silence_id"], second}
    assert "payments migration" in run(capsys, "silence", "list")

    ended = run_json(capsys, "silence", "expire", made["silence_id"], "--json")
    assert ended["active"] is False and ended["expired_by"] == made["author"]
    assert [s["silence_id"] for s in run_json(capsys, "silence", "list", "--json")] == [second]
    everything = run_json(capsys, "silence", "list", "--all", "--json")
    assert {s["silence_id"] for s in everything} == {made["silence_id"], second}
    assert "over already" in run(capsys, "silence", "expire", made["silence_id"], code=1)
    assert "no silence" in run(capsys, "silence", "expire", "sil-nope", code=1)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--match", "owner=bob", "--duration", "1h"], "matcher key 'owner'"),
        (["--match", "resource_id", "--duration", "1h"], "is not KEY=GLOB"),
        (["--match", "resource_id=x", "--duration", "soon"], "is not like 30m"),
        (["--match", "resource_id=x", "--until", "2001-01-01T00:00:00Z"], "in the future"),
    ],
)
def test_bad_silences_are_usage_errors(
    booted: Any, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    err = run(capsys, "silence", "add", *argv, "--reason", "r", code=2)
    assert says in err
    assert run_json(capsys, "silence", "list", "--all", "--json") == []


def test_freeze_add_list_end(booted: Any, capsys: pytest.CaptureFixture[str]) -> None:
    made = run_json(capsys, "freeze", "add", "--duration", "1h", "--reason", "black friday",
                    "--json")  # fmt: skip
    later = run_json(capsys, "freeze", "add", "--start", "2099-01-01T00:00:00Z", "--duration",
                     "1d", "--reason", "new year", "--json")  # fmt: skip
    assert made["active"] is True and later["active"] is False
    listed = run_json(capsys, "freeze", "list", "--json")
    assert {f["freeze_id"] for f in listed} == {made["freeze_id"], later["freeze_id"]}
    assert run(capsys, "freeze", "end", made["freeze_id"]).strip().endswith("ended")
    assert [f["freeze_id"] for f in run_json(capsys, "freeze", "list", "--json")] == [
        later["freeze_id"]
    ]
    assert len(run_json(capsys, "freeze", "list", "--all", "--json")) == 2


def test_pause_status_resume_and_a_replica_obeys(
    booted: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    calm = run_json(capsys, "status", "--json")
    assert calm["paused"] == {"paused": False, "by": None, "reason": None, "since": None}
    assert set(calm) >= {"paused", "breaker", "freezes", "silences", "open_incidents", "queue"}
    assert calm["breaker"]["open"] is False
    assert calm["queue"]["visible"] == 0 and calm["queue"]["dead_letter"] == {
        "visible": 0,
        "in_flight": 0,
    }

    paused = run_json(capsys, "pause", "--reason", "bad deploy", "--json")
    assert paused["paused"] is True and paused["reason"] == "bad deploy"
    assert "paused already" in run(capsys, "pause", "--reason", "again", code=1)
    run(capsys, "freeze", "add", "--duration", "1h", "--reason", "release week")
    run(capsys, "silence", "add", "--match", "resource_type=lambda", "--duration", "1h",
        "--reason", "lambda migration")  # fmt: skip

    # A replica (the daemon's components) now asks instead of acting.
    ec2 = boto3.client("ec2", endpoint_url=booted_endpoint(), region_name="us-east-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    ec2.stop_instances(InstanceIds=[instance_id])
    state, detail = asyncio.run(handle_stop(instance_id))
    assert state is WorkflowState.AWAITING_APPROVAL
    assert "paused by arn:aws:sts::123456789012:user/moto" in detail

    status = run_json(capsys, "status", "--json")
    assert status["paused"]["paused"] is True and status["paused"]["reason"] == "bad deploy"
    assert status["paused"]["by"] == "arn:aws:sts::123456789012:user/moto"
    assert [f["reason"] for f in status["freezes"]] == ["release week"]
    assert [s["reason"] for s in status["silences"]] == ["lambda migration"]
    assert status["open_incidents"]["AWAITING_APPROVAL"] == 1
    text = run(capsys, "status")
    assert "PAUSED by arn:aws:sts::123456789012:user/moto" in text
    assert "open incidents: AWAITING_APPROVAL 1" in text and "release week" in text

    resumed = run_json(capsys, "resume", "--json")
    assert resumed["paused"] is False and resumed["resumed_by"].endswith("user/moto")
    assert "not paused" in run(capsys, "resume", code=1)
    assert run_json(capsys, "status", "--json")["paused"]["paused"] is False


def booted_endpoint() -> str:
    return load_settings().aws_endpoint_url or ""


async def handle_stop(instance_id: str) -> tuple[WorkflowState, str]:
    settings = load_settings()
    async with build_clients(settings) as clients:
        engine = build_components(settings, clients, Metrics()).engine
        event = {
            "version": "0",
            "id": f"ev-{instance_id}",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "time": "2026-12-03T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"instance-id": instance_id, "state": "stopped"},
        }
        (normalized,) = parse_event(json.dumps(event))
        incident = await engine.handle_event(normalized)
        assert incident is not None
        return incident.workflow_state, "\n".join(e.detail for e in incident.timeline)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "0m", "1h 3"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)
