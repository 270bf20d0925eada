"""Bad input: every kind is `InvalidEvent` with a reason from the dead-letter set, a one-line
bounded message that echoes no payload, in bounded time; nothing else is ever raised, not even
for corpus events with any field replaced by a value of the wrong type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.intake import envelope
from aiops_agent.intake.envelope import MAX_DEPTH, MAX_EVENT_BYTES, InvalidEvent
from aiops_agent.intake.normalize import NORMALIZER_FAILED, parse_event
from aiops_agent.obs.metrics import DEAD_LETTER_REASONS
from tests.conftest import EVENTS_DIR

SECRET = "do-not-echo-me"


def _event(detail: Any, detail_type: str = "EC2 Instance State-change Notification") -> str:
    return json.dumps(
        {
            "id": "e",
            "detail-type": detail_type,
            "source": "aws.ec2",
            "time": "2026-11-25T10:00:00Z",
            "region": "eu-west-1",
            "detail": detail,
        }
    )


def _nested(depth: int) -> str:
    return '{"a":' * depth + f'"{SECRET}"' + "}" * depth


BIG_DETAIL = {"instance-id": "i-0abc1234", "state": "stopped", "pad": SECRET * 20_000}
CASES: list[tuple[str, str | bytes, str]] = [
    ("malformed json", '{"detail-type": "x", ' + SECRET, "not_json"),
    ("trailing garbage", '{"a": 1} ' + SECRET, "not_json"),
    ("invalid utf-8", b'{"a": "\xff\xfe"}', "not_json"),
    ("NaN", '{"a": NaN}', "not_json"),
    ("Infinity", '{"a": -Infinity}', "not_json"),
    ("huge integer", '{"a": ' + "9" * 5000 + "}", "not_json"),
    ("empty", "", "not_json"),
    ("array", f'[{{"detail-type": "{SECRET}"}}]', "not_object"),
    ("number", "42", "not_object"),
    ("string", f'"{SECRET}"', "not_object"),
    ("null", "null", "not_object"),
    ("boolean", "true", "not_object"),
    ("empty object", "{}", "not_eventbridge"),
    ("unknown shape", json.dumps({"hello": SECRET}), "not_eventbridge"),
    ("alarm action payload", json.dumps({"alarmData": {"alarmName": SECRET}}), "not_eventbridge"),
    (
        "unknown kind from outside AWS",
        _event({"x": SECRET}, detail_type="Mystery Event").replace("aws.ec2", "my.app"),
        "unsupported",
    ),
    ("custom source", _event({"state": "stopped"}).replace("aws.ec2", "evil.app"), "unsupported"),
    ("CloudTrail log file", json.dumps({"Records": [{"eventName": SECRET}]}), "unsupported"),
    ("256 KiB event", _event(BIG_DETAIL), "too_large"),
    ("256 KiB as bytes", _event(BIG_DETAIL).encode(), "too_large"),
    (
        "multibyte text over the limit",
        _event({"pad": "é" * (MAX_EVENT_BYTES // 2 + 1)}),
        "too_large",
    ),
    ("nested beyond the limit", _event(json.loads(_nested(MAX_DEPTH))), "too_large"),
    ("deep arrays", "[" * 200_000, "too_large"),
    ("deep objects, unclosed", '{"a":' * 100_000, "too_large"),
    ("deep valid nesting", _nested(50_000), "too_large"),
    ("detail not an object", _event([SECRET]), "invalid_field"),
    ("detail a string that is not an object", _event(json.dumps([SECRET])), "invalid_field"),
    ("missing source", json.dumps({"detail-type": "x", "detail": {}}), "missing_field"),
    ("state change without state", _event({"instance-id": "i-0abc1234"}), "missing_field"),
    (
        "record with a mistyped field",
        json.dumps({"eventName": "X", "eventTime": 5, "userIdentity": 3}),
        "invalid_field",
    ),
]


@pytest.mark.parametrize(
    ("body", "reason"), [(b, r) for _, b, r in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_rejected_with_its_reason(body: str | bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        parse_event(body)
    assert err.value.reason == reason, str(err.value)
    assert err.value.reason in DEAD_LETTER_REASONS
    text = str(err.value)
    assert "\n" not in text and len(text) <= 300
    assert SECRET not in text


def test_an_oversized_event_is_refused_before_it_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bounded work, counted rather than timed: an event over the limit is never parsed."""
    decoded: list[int] = []
    real_loads = json.loads

    def counting_loads(text: Any, **kwargs: Any) -> Any:
        decoded.append(len(text))
        return real_loads(text, **kwargs)

    monkeypatch.setattr(envelope.json, "loads", counting_loads)
    big = _event({"pad": "x" * MAX_EVENT_BYTES})
    wide = _event({"pad": "\u00e9" * (MAX_EVENT_BYTES // 2 + 1)})
    for body in (big, big.encode(), wide):
        with pytest.raises(InvalidEvent) as err:
            parse_event(body)
        assert err.value.reason == "too_large"
    assert decoded == []
    parse_event(_event({"instance-id": "i-0abc1234", "state": "stopped"}))
    assert len(decoded) == 1  # the counter sees a decode when one happens


def test_every_reason_is_a_dead_letter_reason() -> None:
    reasons = {reason for _, _, reason in CASES}
    assert reasons <= DEAD_LETTER_REASONS
    assert reasons == {
        "not_json",
        "not_object",
        "too_large",
        "not_eventbridge",
        "unsupported",
        "missing_field",
        "invalid_field",
    }


def test_an_event_just_under_the_limit_is_accepted() -> None:
    pad = "x" * (MAX_EVENT_BYTES - 400)
    body = _event({"instance-id": "i-0abc1234", "state": "stopped", "pad": pad})
    assert len(body.encode()) <= MAX_EVENT_BYTES
    (event,) = parse_event(body)
    assert event.resource_id == "i-0abc1234"


def test_nesting_at_the_limit_is_accepted() -> None:
    detail = {
        "instance-id": "i-0abc1234",
        "state": "stopped",
        "x": json.loads(_nested(MAX_DEPTH - 3)),
    }
    assert parse_event(_event(detail))[0].resource_id == "i-0abc1234"


# ---------------------------------------------------------------- nothing but InvalidEvent

_WRONG_VALUES: list[Any] = [None, True, "\x00\x1b[2J", [-1], {"": None}]
"""Absent, a boolean, control characters, a list, an object: each where a field was."""


def _samples() -> list[Path]:
    root = Path(EVENTS_DIR)
    return sorted(p for p in root.glob("*.json") if p.name != "expected.json")


def _mutations(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The payload with each top-level and detail field replaced by each wrong value."""
    out: list[dict[str, Any]] = []
    detail = payload.get("detail")
    for value in _WRONG_VALUES:
        for key in payload:
            out.append({**payload, key: value})
        if isinstance(detail, dict):
            for key in detail:
                out.append({**payload, "detail": {**detail, key: value}})
    return out


@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.stem)
def test_mutated_corpus_events_never_raise_anything_else(path: Path) -> None:
    rules = RulesAnalyzer()
    payload = json.loads(path.read_text())
    with capture_logs() as logs:
        _run(rules, payload)
    assert not [e for e in logs if e["event"] == "intake.normalizer_failed"]


UNREAD_FIELDS = frozenset(
    {"eventVersion", "requestID", "tlsDetails", "vpcEndpointId", "sessionCredentialFromConsole"}
)
"""CloudTrail record fields the agent never reads (Panther's `p_*` keys too)."""


def test_a_wrong_value_in_a_field_the_agent_does_not_read_changes_nothing() -> None:
    """Robust, not merely crash-free: an intake that rejected every oddity would pass the test
    above; this one fails if a field the agent ignores can turn a judged event into a rejection
    or change what it is about."""
    checked: set[str] = set()
    for path in _samples():
        payload = json.loads(path.read_text())
        try:
            original = [(e.resource_type, e.resource_id) for e in parse_event(json.dumps(payload))]
        except InvalidEvent:
            continue  # rejected as it is (test_event_corpus says which and why)
        for key in [k for k in payload if k in UNREAD_FIELDS or k.startswith("p_")]:
            for value in _WRONG_VALUES:
                events = parse_event(json.dumps({**payload, key: value}))
                got = [(e.resource_type, e.resource_id) for e in events]
                assert got == original, (path.name, key, value)
            checked.add(path.name)
    assert len(checked) >= 20, sorted(checked)  # the corpus really exercises this


def _run(rules: RulesAnalyzer, payload: dict[str, Any]) -> None:
    """Every mutation is judged (each event with reasons) or rejected with a dead-letter reason;
    any other exception fails the test."""
    for mutated in _mutations(payload):
        try:
            events = parse_event(json.dumps(mutated))
        except InvalidEvent as err:
            assert err.reason in DEAD_LETTER_REASONS
            assert NORMALIZER_FAILED not in str(err), (mutated, str(err))  # a normalizer bug
            continue
        for event in events:
            assert rules.judge(event).reasons
