"""`aiops-agent explain EVENT.json [--json]` per CONTRACT.md: the JSON shape, a list for several
resources, exit 2 with one stderr line on unparsable input, and no network at all."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from aiops_agent.cli.main import main

IID, IID2 = "i-0abc1234def567890", "i-0fed9876cba543210"


def _record(name: str, ids: list[str], **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
        "eventTime": "2026-11-25T10:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": i} for i in ids]}},
        "eventID": "ct-42",
    }
    record.update(extra)
    return record


@pytest.fixture
def write(tmp_path: Path) -> Any:
    def _write(content: str | dict[str, Any] | list[Any], name: str = "event.json") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    return _write


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """AIOPS_AWS_ENDPOINT_URL on a closed port, and any connection attempt fails the test."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AIOPS_AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("explain opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("no_network")
def test_json_shape_for_one_resource(write: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(write(_record("StopInstances", [IID]))), "--json")
    assert code == 0
    result = json.loads(out)
    assert isinstance(result, dict)
    assert {
        "classification",
        "confidence",
        "resource_type",
        "resource_id",
        "reasons",
        "plan",
    } <= set(result)
    assert result["classification"] == "FAILURE"
    assert 0.8 <= result["confidence"] <= 1.0
    assert (result["resource_type"], result["resource_id"]) == ("ec2", IID)
    assert result["reasons"] and all(isinstance(r, str) for r in result["reasons"])
    assert [step["action"] for step in result["plan"]] == ["ec2.start_instances"]
    assert result["plan"][0]["params"]["instance_id"] == IID


@pytest.mark.usefixtures("no_network")
def test_a_list_for_several_resources(write: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(write(_record("TerminateInstances", [IID, IID2]))), "--json")
    assert code == 0
    results = json.loads(out)
    assert isinstance(results, list)
    assert [r["resource_id"] for r in results] == [IID, IID2]
    for result, iid in zip(results, (IID, IID2), strict=True):
        assert result["classification"] == "FAILURE"
        assert [s["action"] for s in result["plan"]] == ["iac.restore"]
        assert result["plan"][0]["params"]["resource_id"] == iid


@pytest.mark.usefixtures("no_network")
def test_a_normal_event_exits_0_with_an_empty_plan(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, str(write(_record("StartInstances", [IID]))), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["classification"] == "NORMAL"
    assert result["plan"] == []


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", "42", '{"hello": "world"}', "[" * 50_000],
    ids=["malformed", "array", "scalar", "not an event", "deep"],
)
def test_unparsable_input_exits_2_with_one_line(
    write: Any, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    code, out, err = run(capsys, str(write(content)), "--json")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("aiops-agent: cannot parse")


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(tmp_path / "absent.json"), "--json")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1


@pytest.mark.usefixtures("no_network")
def test_text_output_names_the_verdict_and_the_plan(
    write: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, str(write(_record("StopInstances", [IID]))))
    assert code == 0
    assert f"ec2 {IID} (eu-west-1): FAILURE" in out
    assert "plan: ec2.start_instances" in out
