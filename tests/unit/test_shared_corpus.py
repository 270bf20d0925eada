"""Every real payload in ../shared/data/events: parsing never fails but cleanly, and the EC2
samples reach the verdicts of expected.json (the other kinds get their rules in a later issue).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.domain.models import Classification, NormalizedEvent
from aiops_agent.intake.envelope import InvalidEvent
from aiops_agent.intake.normalize import parse_event
from tests.conftest import EVENTS_DIR

EVENTS = Path(EVENTS_DIR)
EXPECTED_FILE = EVENTS / "expected.json"
EC2_PATTERNS = ("ct_*instances*", "ec2_state_*", "seed_terminateinstances_*")


def _expected() -> dict[str, dict[str, Any]]:
    if not EXPECTED_FILE.exists():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(EXPECTED_FILE.read_text())
    return data


EXPECTED = _expected()
SAMPLES = (
    sorted(p.stem for p in EVENTS.glob("*.json") if p != EXPECTED_FILE) if EVENTS.exists() else []
)
EC2_SAMPLES = [s for s in SAMPLES if any(fnmatch.fnmatch(s, p) for p in EC2_PATTERNS)]

rules = RulesAnalyzer()


def _load(name: str) -> bytes:
    if not EVENTS.exists():
        pytest.skip(f"{EVENTS} is absent")
    return (EVENTS / f"{name}.json").read_bytes()


def _labels(values: list[str]) -> set[Classification]:
    """expected.json labels as classifications ("NORMAL/no-op" and the like count as NORMAL)."""
    return {Classification(value.split("/", 1)[0].strip().upper()) for value in values}


def test_the_corpus_is_complete() -> None:
    if not EVENTS.exists():
        pytest.skip(f"{EVENTS} is absent")
    assert len(SAMPLES) == 58
    assert set(SAMPLES) == set(EXPECTED)
    assert len(EC2_SAMPLES) >= 15


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_parses_or_is_rejected_cleanly(name: str) -> None:
    body = _load(name)
    expected = EXPECTED.get(name, {})
    try:
        events = parse_event(body)
    except InvalidEvent as err:
        assert "reject_or" in expected, f"{name} was rejected: {err}"
        assert err.reason in {"not_eventbridge", "unsupported"}
        return
    assert events
    for event in events:
        assert isinstance(event, NormalizedEvent)
        assert event.resource_type and event.resource_id and event.action
        assert event.time.tzinfo is not None
        json.dumps(event.model_dump(mode="json"))  # storable as it is
        analysis = rules.judge(event)  # no verdict asserted here for non-EC2 kinds yet
        assert 0.0 <= analysis.confidence <= 1.0
        assert analysis.reasons
        if "reject_or" in expected:
            assert analysis.classification in _labels(expected["reject_or"])


@pytest.mark.parametrize("name", EC2_SAMPLES)
def test_ec2_samples_reach_the_expected_verdict(name: str) -> None:
    expected = EXPECTED[name]
    events = parse_event(_load(name))
    allowed = _labels(expected["classification"])
    for event in events:
        analysis = rules.judge(event)
        assert analysis.classification in allowed, (name, analysis.reasons)
        if analysis.classification is Classification.NORMAL:
            assert analysis.plan == (), name
        else:
            assert analysis.plan, name
    if "resource_type" in expected:
        assert {e.resource_type for e in events} == {expected["resource_type"]}
    if "resource_id" in expected:
        assert [e.resource_id for e in events] == [expected["resource_id"]]
    if "resource_ids" in expected:
        assert sorted(e.resource_id for e in events) == sorted(expected["resource_ids"])


def test_the_replayed_termination_goes_to_manual_review() -> None:
    (event,) = parse_event(_load("ec2_state_terminated_replay_powertools"))
    analysis = rules.judge(event)
    assert analysis.classification is Classification.FAILURE
    assert analysis.confidence <= 0.5
    assert analysis.requires_approval


def test_the_transit_gateway_deletion_is_notify_only() -> None:
    expected = EXPECTED.get("ct_deletetgwattachment_wrapped_assumedrole_custodian", {})
    (event,) = parse_event(_load("ct_deletetgwattachment_wrapped_assumedrole_custodian"))
    analysis = rules.judge(event)
    assert expected.get("plan") == "notify-only"
    assert analysis.classification is Classification.FAILURE
    assert analysis.plan == ()
    assert event.resource_id == expected["resource_id"]
