"""Every real payload in tests/fixtures/events through `aiops-agent explain --json`.

Each file reaches the verdict of expected.json (classification within its set, resource type
and id where it names them), or, for the two CloudWatch alarm-action payloads that are not
EventBridge events, a clean rejection: exit 2 and one line on stderr. `VERDICTS` pins this
agent's exact verdict and plan per file (where expected.json allows two answers, the one
chosen), so that a rule change that moves a verdict is a visible, reviewed change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.cli.main import main
from aiops_agent.intake.envelope import InvalidEvent
from aiops_agent.intake.normalize import parse_event
from tests.conftest import EVENTS_DIR

EVENTS = Path(EVENTS_DIR)
EXPECTED_FILE = EVENTS / "expected.json"

_F, _T, _A, _N = "FAILURE", "TAMPERING", "ANOMALY", "NORMAL"
_RESTORE, _START = ("iac.restore",), ("ec2.start_instances",)
VERDICTS: dict[str, tuple[str, tuple[str, ...]] | None] = {
    "asg_launch_unsuccessful_custodian": (_F, ()),
    "ct_createbucket_wrapped_assumedrole_custodian": (_N, ()),
    "ct_deletebucket_assumedrole_panther": (_F, _RESTORE),
    "ct_deletebucket_bucketnotempty_panther": (_N, ()),
    "ct_deletedbinstance_accessdenied_panther": (_N, ()),
    "ct_deletefunction_assumedrole_panther": (_F, _RESTORE),
    "ct_deletefunction_iamuser_panther": (_F, _RESTORE),
    "ct_deleteparameter_trimmed_synthetic": (_T, _RESTORE),
    "ct_deletetable_assumedrole_ddbdocs": (_F, _RESTORE),
    "ct_deletetgwattachment_wrapped_assumedrole_custodian": (_F, ()),
    "ct_describeinstances_panther": (_N, ()),
    "ct_getparameter_assumedrole_panther": (_N, ()),
    "ct_getparameter_trimmed_synthetic": (_N, ()),
    "ct_getparameters_plain_panther": (_N, ()),
    "ct_getrole_accessdenied_panther": (_N, ()),
    "ct_putbucketpolicy_accessdenied_assumedrole_panther": (_N, ()),
    "ct_putparameter_trimmed_synthetic": (_N, ()),  # version 1: a creation
    "ct_runinstances_assumedrole_custodian": (_N, ()),
    "ct_runinstances_autoscaling_root_custodian": (_N, ()),
    "ct_startinstances_iamuser_ctdocs": (_N, ()),
    "ct_stopinstances_errorcode_panther": (_N, ()),
    "ct_stopinstances_iamuser_ctdocs": (_F, _START),
    "ct_stopinstances_panther": (_F, _START),
    "ct_terminateinstances_assumedrole_panther": (_F, _RESTORE),
    "ct_terminateinstances_autoscaling_panther": (_N, ()),
    "ct_terminateinstances_root_ec2docs": (_F, _RESTORE),
    "ct_updatetrail_error_ctdocs": (_N, ()),
    "cw_alarm_anomaly_detection_cwdocs": (_A, ()),
    "cw_alarm_composite_lambda_action_powertools": None,  # rejected: not an EventBridge event
    "cw_alarm_composite_suppressed_cwdocs": (_N, ()),
    "cw_alarm_config_deleted_cwdocs": (_T, ()),
    "cw_alarm_lambda_action_payload_powertools": None,  # rejected: not an EventBridge event
    "cw_alarm_metric_math_cwdocs": (_A, ()),
    "cw_alarm_ok_recovered_mechanicalrock": (_N, ()),
    "cw_alarm_single_metric_cpu_cwdocs": (_A, ()),
    "ec2_state_pending_custodian": (_N, ()),
    "ec2_state_pending_ec2docs": (_N, ()),
    "ec2_state_terminated_ebdocs": (_F, _RESTORE),
    "ec2_state_terminated_replay_powertools": (_F, _RESTORE),  # with approval, confidence 0.5
    "ecs_container_instance_state_ecsdocs": (_N, ()),
    "ecs_deployment_completed_ecsdocs": (_N, ()),
    "ecs_deployment_failed_ecsdocs": (_F, ("ecs.force_new_deployment",)),
    "ecs_service_placement_failure_ecsdocs": (_F, ()),
    "ecs_service_task_start_impaired_ecsdocs": (_F, ("ecs.force_new_deployment",)),
    "ecs_task_running_ecsdocs": (_N, ()),
    "ecs_task_stopped_exit0_synthetic": (_N, ()),
    "health_capacity_reservation_0_ec2docs": (_N, ()),
    "health_capacity_reservation_1_ec2docs": (_N, ()),
    "health_ec2_instance_store_degraded_healthtools": (_F, ()),
    "health_ec2_maintenance_scheduled_insight": (_A, ()),
    "health_ec2_retirement_custodian": (_F, ("ec2.stop_start_instances",)),
    "health_test_event_healthtools": (_N, ()),
    "s3_object_deleted_powertools": (_N, ()),
    "seed_terminateinstances_synthetic": (_F, _RESTORE),
    "ssm_param_aliases_0_ssmdocs": (_N, ()),
    "ssm_param_create_ssmdocs": (_N, ()),
    "ssm_param_delete_ssmdocs": (_T, _RESTORE),
    "ssm_param_update_ssmdocs": (_T, ("ssm.restore_parameter",)),
}


def _expected() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(EXPECTED_FILE.read_text())
    return data


EXPECTED = _expected()
SAMPLES = sorted(p.stem for p in EVENTS.glob("*.json") if p != EXPECTED_FILE)
rules = RulesAnalyzer()


def _path(name: str) -> Path:
    return EVENTS / f"{name}.json"


def explain(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main(["explain", str(_path(name)), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else out), err


def _labels(values: list[str]) -> set[str]:
    return {value.split("/", 1)[0].strip().upper() for value in values}


def test_the_corpus_is_complete() -> None:
    assert len(SAMPLES) == 58
    assert set(SAMPLES) == set(EXPECTED) == set(VERDICTS)


@pytest.mark.parametrize("name", SAMPLES)
def test_explain_reaches_the_expected_verdict(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = EXPECTED[name]
    code, out, err = explain(name, capsys)
    if code != 0:
        assert code == 2, (name, err)
        assert "reject_or" in expected, f"{name} was rejected: {err}"
        assert out == ""
        assert len(err.strip().splitlines()) == 1
        assert "not_eventbridge" in err
        return
    results = out if isinstance(out, list) else [out]
    assert results
    allowed = _labels(expected.get("classification") or expected.get("reject_or", []))
    for result in results:
        assert result["classification"] in allowed, (name, result["reasons"])
        assert 0.0 <= result["confidence"] <= 1.0
        assert result["reasons"] and all(isinstance(r, str) for r in result["reasons"])
        if result["classification"] == "NORMAL":
            assert result["plan"] == [], name
    if "resource_type" in expected:
        assert {r["resource_type"] for r in results} == {expected["resource_type"]}
    if "resource_id" in expected:
        assert [r["resource_id"] for r in results] == [expected["resource_id"]]
    if "resource_ids" in expected:
        assert sorted(r["resource_id"] for r in results) == sorted(expected["resource_ids"])
    if expected.get("plan") == "notify-only":
        assert all(r["plan"] == [] for r in results)


@pytest.mark.parametrize("name", SAMPLES)
def test_the_pinned_verdict_and_plan(name: str) -> None:
    pinned = VERDICTS[name]
    body = _path(name).read_bytes()
    if pinned is None:
        with pytest.raises(InvalidEvent, match="not_eventbridge"):
            parse_event(body)
        return
    classification, actions = pinned
    for event in parse_event(body):
        analysis = rules.judge(event)
        assert analysis.classification.value == classification, (name, analysis.reasons)
        assert tuple(step.action for step in analysis.plan) == actions, name
        assert all(step.params.get("region") == event.region for step in analysis.plan)


def test_the_replayed_termination_goes_to_manual_review(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = explain("ec2_state_terminated_replay_powertools", capsys)
    assert code == 0
    assert out["classification"] == "FAILURE"
    assert out["confidence"] <= 0.5
    assert out["requires_approval"] is True
    assert any("archive replay" in r for r in out["reasons"])


def test_the_alarm_back_to_ok_resolves(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain("cw_alarm_ok_recovered_mechanicalrock", capsys)
    assert code == 0
    assert out["normalized"]["details"]["resolves"] is True
    assert (out["resource_type"], out["resource_id"]) == ("cloudwatch", "flaky-service")


def test_the_denied_deletion_is_a_security_notice(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain("ct_deletedbinstance_accessdenied_panther", capsys)
    assert code == 0
    assert (out["resource_type"], out["resource_id"]) == ("rds", "production-db")
    assert any("security notice" in r for r in out["reasons"])


def test_explain_says_when_a_change_is_intended(capsys: pytest.CaptureFixture[str]) -> None:
    """Auto Scaling's scale-in is intended: it explains the instance's `terminated` report."""
    _, scale_in, _ = explain("ct_terminateinstances_autoscaling_panther", capsys)
    _, by_hand, _ = explain("ct_stopinstances_iamuser_ctdocs", capsys)
    results = scale_in if isinstance(scale_in, list) else [scale_in]
    assert results and all(r["intended"] and r["classification"] == "NORMAL" for r in results)
    assert by_hand["intended"] is False and by_hand["classification"] == "FAILURE"
