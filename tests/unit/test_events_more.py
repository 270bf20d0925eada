"""Issue 14's public payloads through `aiops-agent explain --json`: every one judged as
expected.json says, which was written before the agent ever ran on them.

Each AWS event is handled (exit 0) with the expected classification, resource, severity (where
the expectation names one) and never a plan; what is no AWS event at all exits 2. The split
(`dev`: used to write the rules, `heldout`: not, `fresh`: gathered after) is reported by the
note, not here: every part must pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiops_agent.cli.main import main
from tests.conftest import MORE_EVENTS_DIR

EXPECTED: dict[str, dict[str, Any]] = json.loads((MORE_EVENTS_DIR / "expected.json").read_text())


def _explain(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main(["explain", str(MORE_EVENTS_DIR / f"{name}.json"), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_every_payload_has_an_expectation_and_a_source() -> None:
    payloads = {p.stem for p in Path(MORE_EVENTS_DIR).glob("*.json") if p.name != "expected.json"}
    assert set(EXPECTED) == payloads
    rows = [
        line.split(" | ")
        for line in (MORE_EVENTS_DIR / "SOURCES.md").read_text().splitlines()
        if " | " in line and not line.startswith(("file", "---"))
    ]
    assert {row[0] for row in rows} == payloads
    for name, source, licence in rows:
        assert "@" in source and ":" in source, f"{name}: no repo@commit:path"
        assert licence.strip(), name
    assert {e["split"] for e in EXPECTED.values()} <= {"dev", "heldout", "fresh"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_explain_reaches_the_expected_verdict(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    want = EXPECTED[name]
    code, out, err = _explain(name, capsys)
    assert code == want["exit"], err
    if code != 0:
        assert err.count("\n") == 1 and "cannot parse" in err
        return
    assert isinstance(out, dict), "one resource per payload"
    assert out["classification"] in want["classification"], out["reasons"]
    for key in ("resource_type", "resource_id"):
        if key in want:
            assert out[key] == want[key]
    if "severity" in want:
        assert out["severity"] in want["severity"], out["reasons"]
    assert out["plan"] == [], "an AWS notice is never acted on"
    assert out["reasons"], "a verdict says why"


def test_scheduled_key_deletion_and_disable_key_are_judged_alike(
    capsys: pytest.CaptureFixture[str],
) -> None:
    verdicts = {
        name: _explain(name, capsys)[1]
        for name in (
            "ct_schedulekeydeletion_kmsdocs",
            "ct_disablekey_kmsdocs",
            "kms_cmk_deletion_kmsdocs",
        )
    }
    assert len({(v["classification"], v["severity"]) for v in verdicts.values()}) == 1, verdicts


def test_the_stopped_rds_instance_reason_reads_the_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _explain("rds_instance_stopped_rdsdocs", capsys)[1]
    assert "RDS-EVENT-0087" in out["reasons"][0] and "DB instance stopped" in out["reasons"][0]


def test_a_spot_warning_says_it_is_never_restarted(capsys: pytest.CaptureFixture[str]) -> None:
    out = _explain("ec2_spot_itn_nth", capsys)[1]
    assert any("never restarted" in reason for reason in out["reasons"])
    assert out["normalized"]["action"] == "spot:interruption-warning"


def test_a_kind_without_a_rule_is_marked_generic(capsys: pytest.CaptureFixture[str]) -> None:
    out = _explain("inspector2_finding_notifyslack", capsys)[1]
    assert out["normalized"]["details"]["generic"] is True
    assert out["normalized"]["details"]["signal"] == {"severity": "MEDIUM"}
    assert any("no rule for this kind" in reason for reason in out["reasons"])
