"""`ssm.restore_parameter`'s pure parts: labels, the restore decision, put arguments, the check."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from aiops_agent.actions.ssm import (
    decide_restore,
    interpret_parameter,
    own_restore,
    put_arguments,
    restore_label,
    source_label,
    value_digest,
)

LABEL = "aiops-done"
SRC = "aiops-done.src"
_VALID_LABEL = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def _v(version: int, value: str, labels: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"Version": version, "Value": value, "Type": "String", "Labels": list(labels), **extra}


@pytest.mark.parametrize(
    "token",
    ["inc-0123:0", "x" * 500, "aws-looking:1", "ssm/param:2", "9starts-with-digit", "é ü/:*"],
)
def test_labels_are_valid_ssm_labels_and_stable(token: str) -> None:
    for label in (restore_label(token), source_label(token)):
        assert _VALID_LABEL.match(label), label
        assert not label[0].isdigit()
        assert not label.lower().startswith(("aws", "ssm"))
    assert restore_label(token) == restore_label(token)
    assert source_label(token) != restore_label(token)


def test_labels_differ_for_tokens_that_sanitize_alike() -> None:
    assert restore_label("inc-a:0") != restore_label("inc-a-0")
    assert restore_label("inc-a:0").startswith("aiops-inc-a-0-")


def test_value_digest_is_sha256() -> None:
    assert value_digest("s3cr3t") == hashlib.sha256(b"s3cr3t").hexdigest()


def test_decide_without_bad_version_restores_the_one_before_newest() -> None:
    decision = decide_restore([_v(2, "b"), _v(1, "a"), _v(3, "c")], None, LABEL, SRC)
    assert decision.kind == "write"
    assert decision.source is not None and decision.source["Version"] == 2


def test_decide_with_bad_version_takes_the_newest_older_one() -> None:
    history = [_v(1, "a"), _v(4, "d"), _v(6, "bad"), _v(7, "later")]
    decision = decide_restore(history, 6, LABEL, SRC)
    assert decision.kind == "write"
    assert decision.source is not None and decision.source["Version"] == 4
    trimmed = decide_restore([_v(5, "e"), _v(6, "bad")], 3, LABEL, SRC)  # 1..4 aged out
    assert trimmed.kind == "impossible" and "no version older than 3" in trimmed.detail


@pytest.mark.parametrize(
    ("history", "bad", "phrase"),
    [
        ([], None, "no history"),
        ([_v(1, "a")], None, "single version"),
        ([_v(1, "a"), _v(2, "b")], 5, "not in the history"),
        ([_v(1, "a"), _v(2, "b")], 1, "no version older than 1"),
    ],
)
def test_decide_impossible(history: list[dict[str, Any]], bad: int | None, phrase: str) -> None:
    decision = decide_restore(history, bad, LABEL, SRC)
    assert decision.kind == "impossible"
    assert phrase in decision.detail


def test_decide_done_when_the_label_is_there() -> None:
    history = [_v(1, "a"), _v(2, "b"), _v(3, "a", (LABEL,))]
    decision = decide_restore(history, 2, LABEL, SRC)
    assert decision.kind == "done"
    assert decision.restored is not None and decision.restored["Version"] == 3


def test_decide_source_label_wins_over_recomputing() -> None:
    """After a crash post-write: the newest is ours; 'one before newest' would be the bad one."""
    history = [_v(1, "good", (SRC,)), _v(2, "bad"), _v(3, "good")]
    decision = decide_restore(history, None, LABEL, SRC)
    assert decision.kind == "adopt"
    assert decision.source is not None and decision.source["Version"] == 1
    assert decision.restored is not None and decision.restored["Version"] == 3


def test_decide_adopt_requires_same_value_type_and_key() -> None:
    same = [_v(1, "a"), _v(2, "b"), _v(3, "a")]
    assert decide_restore(same, 2, LABEL, SRC).kind == "adopt"
    other_type = [_v(1, "a"), _v(2, "b"), {**_v(3, "a"), "Type": "SecureString"}]
    assert decide_restore(other_type, 2, LABEL, SRC).kind == "write"
    other_key = [
        _v(1, "a", Type="SecureString", KeyId="alias/a"),
        _v(2, "b", Type="SecureString", KeyId="alias/a"),
        _v(3, "a", Type="SecureString", KeyId="alias/evil"),
    ]
    assert decide_restore(other_key, 2, LABEL, SRC).kind == "write"


def test_put_arguments_keep_attributes() -> None:
    source = _v(
        1,
        "secret",
        Type="SecureString",
        KeyId="alias/payments",
        Tier="Standard",
        Description="key",
        AllowedPattern="^s.*$",
        DataType="text",
    )
    args = put_arguments("/p", source, current_tier="Standard")
    assert args == {
        "Name": "/p",
        "Value": "secret",
        "Type": "SecureString",
        "Overwrite": True,
        "Description": "key",
        "Tier": "Standard",
        "KeyId": "alias/payments",
        "AllowedPattern": "^s.*$",
        "DataType": "text",
    }


def test_put_arguments_never_downgrade_and_clear_description() -> None:
    source = _v(1, "plain", KeyId="alias/ignored", Tier="Standard")
    args = put_arguments("/p", source, current_tier="Advanced")
    assert args["Tier"] == "Advanced"  # SSM cannot go back from Advanced
    assert "KeyId" not in args  # a String takes no key
    assert args["Description"] == ""  # the tamperer's description does not stay
    assert "AllowedPattern" not in args and "DataType" not in args


def _current(value: str, type_: str = "String") -> dict[str, Any]:
    return {"Type": type_, "Version": 4, "value_sha256": value_digest(value)}


@pytest.mark.parametrize(
    ("current", "expected_sha", "expected_type", "status"),
    [
        (_current("a"), value_digest("a"), "String", "PASSED"),
        (_current("a"), value_digest("a"), None, "PASSED"),
        (_current("b"), value_digest("a"), "String", "FAILED"),
        (_current("a", "SecureString"), value_digest("a"), "String", "FAILED"),
        (None, value_digest("a"), "String", "FAILED"),
        (_current("a"), None, "String", "FAILED"),
    ],
)
def test_interpret_parameter(
    current: dict[str, Any] | None, expected_sha: str | None, expected_type: str | None, status: str
) -> None:
    outcome = interpret_parameter(current, expected_sha, expected_type)
    assert outcome.status == status
    assert outcome.checks[0] == {
        "check": "parameter_exists",
        "expected": True,
        "actual": current is not None,
    }
    if current is not None and expected_sha:
        sha = next(c for c in outcome.checks if c["check"] == "value_sha256")
        assert (sha["expected"] == sha["actual"]) is (current["value_sha256"] == expected_sha)


def test_own_restore_is_the_newest_version_with_a_restore_label() -> None:
    ours = restore_label("inc-1:0")
    history = [
        {"Version": 1, "Labels": [source_label("inc-2:0")]},
        {"Version": 2, "Labels": []},
        {"Version": 3, "Labels": [ours]},
    ]
    assert own_restore(history) == 3
    assert own_restore(history[:2]) is None  # the newest is someone else's write
    assert own_restore(history[:1]) is None  # a source marker is no restore
    assert own_restore([*history, {"Version": 4}]) is None
    assert own_restore([]) is None
