"""The rules analyzer: every rule, in its order, on hand-made normalized events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.domain.models import (
    Classification,
    NormalizedEvent,
    PlanStep,
    Severity,
)
from aiops_agent.domain.ports import Analyzer
from aiops_agent.intake.envelope import CLOUDTRAIL_DETAIL_TYPE

IID = "i-0abc1234def567890"
ALICE = "arn:aws:iam::123456789012:user/alice"
START = (
    PlanStep(action="ec2.start_instances", params={"instance_id": IID, "region": "us-east-1"}),
)
RESTORE = (
    PlanStep(
        action="iac.restore",
        params={"resource_type": "ec2", "resource_id": IID, "region": "us-east-1"},
    ),
)


def state(value: str, **fields: Any) -> NormalizedEvent:
    return NormalizedEvent(
        event_id="ev-1",
        source="aws.ec2",
        detail_type="EC2 Instance State-change Notification",
        resource_type="ec2",
        resource_id=IID,
        action=f"state:{value}",
        time=datetime(2026, 11, 25, tzinfo=UTC),
        details={"state": value},
        **fields,
    )


def call(action: str, **fields: Any) -> NormalizedEvent:
    base: dict[str, Any] = {
        "event_id": "ct-1",
        "source": "aws.ec2",
        "detail_type": CLOUDTRAIL_DETAIL_TYPE,
        "resource_type": "ec2",
        "resource_id": IID,
        "action": action,
        "time": datetime(2026, 11, 25, tzinfo=UTC),
        "principal": ALICE,
        "principal_type": "IAMUser",
        "user_agent": "aws-cli/2.15",
    }
    base.update(fields)
    return NormalizedEvent(**base)


def plan_of(analysis: Any) -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((step.action, step.params) for step in analysis.plan)


def steps(expected: tuple[PlanStep, ...]) -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((step.action, step.params) for step in expected)


rules = RulesAnalyzer()


def test_it_is_an_analyzer() -> None:
    analyzer: Analyzer = rules
    assert analyzer.name == "rules"


async def test_analyze_is_judge() -> None:
    event = state("stopped")
    assert await rules.analyze(event) == rules.judge(event)


# ---------------------------------------------------------------- EC2 state changes


def test_stopped_instance_is_a_failure_with_a_start_plan() -> None:
    analysis = rules.judge(state("stopped"))
    assert analysis.classification is Classification.FAILURE
    assert analysis.confidence == 0.95
    assert plan_of(analysis) == steps(START)
    assert analysis.analyzer == "rules"
    assert any("stopped" in reason for reason in analysis.reasons)


def test_terminated_instance_is_a_failure_with_a_restore_plan() -> None:
    analysis = rules.judge(state("terminated"))
    assert analysis.classification is Classification.FAILURE
    assert analysis.confidence == 0.95
    assert plan_of(analysis) == steps(RESTORE)


@pytest.mark.parametrize("value", ["pending", "running", "stopping", "shutting-down"])
def test_transitional_and_healthy_states_are_normal(value: str) -> None:
    analysis = rules.judge(state(value))
    assert analysis.classification is Classification.NORMAL
    assert analysis.plan == ()
    assert analysis.severity is Severity.LOW


def test_an_unknown_state_is_normal_with_low_confidence() -> None:
    analysis = rules.judge(state("exploded"))
    assert analysis.classification is Classification.NORMAL
    assert analysis.confidence <= 0.5


# ---------------------------------------------------------------- EC2 API calls


def test_stop_instances_is_a_failure_with_a_start_plan() -> None:
    analysis = rules.judge(call("StopInstances"))
    assert analysis.classification is Classification.FAILURE
    assert analysis.confidence == 0.9
    assert analysis.severity is Severity.HIGH
    assert plan_of(analysis) == steps(START)
    assert any(ALICE in reason for reason in analysis.reasons)


def test_terminate_instances_is_a_failure_with_a_restore_plan() -> None:
    analysis = rules.judge(call("TerminateInstances"))
    assert analysis.classification is Classification.FAILURE
    assert analysis.confidence == 0.9
    assert plan_of(analysis) == steps(RESTORE)


@pytest.mark.parametrize(
    "identity",
    [
        {"principal": "arn:aws:iam::123456789012:root", "principal_type": "Root"},
        {"principal": "root", "principal_type": "Root"},
        {"principal": "arn:aws:iam::123456789012:root", "principal_type": None},
    ],
)
def test_destruction_by_the_root_user_is_critical(identity: dict[str, Any]) -> None:
    analysis = rules.judge(call("TerminateInstances", **identity))
    assert analysis.classification is Classification.FAILURE
    assert analysis.severity is Severity.CRITICAL
    assert any("root" in reason for reason in analysis.reasons)


@pytest.mark.parametrize("action", ["StartInstances", "RunInstances"])
def test_start_and_run_instances_are_normal(action: str) -> None:
    analysis = rules.judge(call(action))
    assert analysis.classification is Classification.NORMAL
    assert analysis.plan == ()


# ---------------------------------------------------------------- nothing changed


@pytest.mark.parametrize("code", ["AccessDenied", "Client.UnauthorizedOperation", "SomeErrorCode"])
def test_a_failed_call_changed_nothing(code: str) -> None:
    event = call("TerminateInstances", succeeded=False, error_code=code)
    analysis = rules.judge(event)
    assert analysis.classification is Classification.NORMAL
    assert analysis.plan == ()
    assert analysis.reasons[0].startswith("TerminateInstances")
    assert f"({code}): nothing changed" in analysis.reasons[0]
    denied = code != "SomeErrorCode"
    assert any("security notice" in r for r in analysis.reasons) is denied


def test_a_failed_harmless_call_carries_no_security_notice() -> None:
    analysis = rules.judge(call("GetRole", resource_type="iam", error_code="AccessDenied"))
    assert analysis.classification is Classification.NORMAL
    assert analysis.reasons == ("GetRole failed (AccessDenied): nothing changed",)


def test_a_read_only_call_is_normal() -> None:
    analysis = rules.judge(call("DescribeInstances", read_only=True))
    assert analysis.classification is Classification.NORMAL
    assert "read-only" in analysis.reasons[0]


# ---------------------------------------------------------------- the loop breaker


def test_own_user_agent_is_never_recovered() -> None:
    event = call("StopInstances", user_agent="Botocore/1.35 aiobotocore/2.15 aiops-agent")
    analysis = rules.judge(event)
    assert analysis.classification is Classification.NORMAL
    assert analysis.plan == ()
    assert "agent itself" in analysis.reasons[0]


def test_own_principal_glob_is_never_recovered() -> None:
    analyzer = RulesAnalyzer(own_principals=["arn:aws:iam::123456789012:role/aiops-agent-*"])
    event = call(
        "TerminateInstances",
        principal="arn:aws:sts::123456789012:assumed-role/aiops-agent-task/ecs-1a2b",
        principal_type="AssumedRole",
    )
    analysis = analyzer.judge(event)
    assert analysis.classification is Classification.NORMAL
    assert "agent itself" in analysis.reasons[0]


def test_a_spoofed_user_agent_is_not_trusted_once_the_identity_is_known() -> None:
    analyzer = RulesAnalyzer(own_principals=["arn:aws:iam::123456789012:role/aiops-agent"])
    event = call("TerminateInstances", user_agent="curl aiops-agent")
    analysis = analyzer.judge(event)
    assert analysis.classification is Classification.FAILURE
    assert plan_of(analysis) == steps(RESTORE)
    assert any("claims aiops-agent" in reason for reason in analysis.reasons)


@pytest.mark.parametrize(
    ("pattern", "principal", "issuer"),
    [
        ("arn:aws:iam::123456789012:role/deploy-*", None, None),
        ("arn:aws:sts::123456789012:assumed-role/deploy-pipeline/*", None, None),
        ("*:role/deploy-pipeline", None, None),
        (
            "arn:aws:iam::123456789012:role/ci/deploy",
            "arn:aws:sts::123456789012:assumed-role/deploy/x",
            "arn:aws:iam::123456789012:role/ci/deploy",
        ),
    ],
)
def test_trusted_principal_globs(pattern: str, principal: str | None, issuer: str | None) -> None:
    analyzer = RulesAnalyzer(trusted_principals=["arn:aws:iam::999:user/nobody", pattern])
    details = {"session_issuer": issuer} if issuer else {}
    event = call(
        "StopInstances",
        principal=principal or "arn:aws:sts::123456789012:assumed-role/deploy-pipeline/run-42",
        principal_type="AssumedRole",
        details=details,
    )
    analysis = analyzer.judge(event)
    assert analysis.classification is Classification.NORMAL
    assert analysis.plan == ()
    assert "trusted principal" in analysis.reasons[0]
    assert pattern in analysis.reasons[0]


def test_a_non_matching_trusted_glob_changes_nothing() -> None:
    analyzer = RulesAnalyzer(trusted_principals=["arn:aws:iam::123456789012:role/deploy-*"])
    analysis = analyzer.judge(call("StopInstances"))
    assert analysis.classification is Classification.FAILURE


def test_blank_patterns_are_ignored() -> None:
    analyzer = RulesAnalyzer(trusted_principals=["", "  "], own_principals=[""])
    assert analyzer.trusted_principals == () and analyzer.own_principals == ()
    assert analyzer.judge(call("StopInstances")).classification is Classification.FAILURE


# ---------------------------------------------------------------- Auto Scaling


def test_scale_in_by_autoscaling_is_normal() -> None:
    event = call(
        "TerminateInstances",
        principal="arn:aws:sts::1:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
        principal_type="AssumedRole",
        invoked_by="autoscaling.amazonaws.com",
    )
    analysis = rules.judge(event)
    assert analysis.classification is Classification.NORMAL
    assert "scale-in" in analysis.reasons[0]


def test_the_autoscaling_service_role_alone_is_recognised() -> None:
    event = call(
        "TerminateInstances",
        principal="arn:aws:sts::1:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
        principal_type="AssumedRole",
    )
    assert rules.judge(event).classification is Classification.NORMAL


def test_a_lookalike_role_name_is_not_autoscaling() -> None:
    event = call(
        "TerminateInstances",
        principal="arn:aws:sts::1:assumed-role/AWSServiceRoleForAutoScalingEvil/x",
        principal_type="AssumedRole",
    )
    assert rules.judge(event).classification is Classification.FAILURE


def test_launch_by_autoscaling_under_root_is_normal() -> None:
    event = call(
        "RunInstances",
        principal="arn:aws:iam::1:root",
        principal_type="Root",
        invoked_by="autoscaling.amazonaws.com",
    )
    assert rules.judge(event).classification is Classification.NORMAL


# ---------------------------------------------------------------- replays


@pytest.mark.parametrize("value", ["stopped", "terminated", "pending"])
def test_a_replay_keeps_its_class_but_goes_to_manual_review(value: str) -> None:
    live = rules.judge(state(value))
    replayed = rules.judge(
        state(value, replayed=True).model_copy(
            update={"details": {"state": value, "replay_name": "nightly"}}
        )
    )
    assert replayed.classification is live.classification
    assert replayed.confidence <= 0.5
    assert replayed.plan == live.plan
    assert replayed.requires_approval is bool(live.plan)
    assert "archive replay (nightly)" in replayed.reasons[-1]


# ---------------------------------------------------------------- everything else


@pytest.mark.parametrize(
    ("action", "resource_type", "resource_id"),
    [
        ("DeleteFunctionUrlConfig", "lambda", "billing"),
        ("DeleteBackup", "dynamodb", "Music"),
        ("DeleteTransitGatewayVpcAttachment", "ec2", "tgw-attach-1"),
        ("TerminateEnvironment", "elasticbeanstalk", "prod"),
        ("RemoveRoleFromInstanceProfile", "iam", "web"),
    ],
)
def test_unknown_destruction_is_a_failure_to_notify(
    action: str, resource_type: str, resource_id: str
) -> None:
    event = call(action, resource_type=resource_type, resource_id=resource_id)
    analysis = rules.judge(event)
    assert analysis.classification is Classification.FAILURE
    assert analysis.plan == ()
    assert f"no automated recovery for {resource_type}" in analysis.reasons[-1]
    assert analysis.reasons[-1].endswith("notify only")


def test_an_unknown_mutation_is_normal_with_low_concern() -> None:
    analysis = rules.judge(
        call("CreateEnvironment", resource_type="elasticbeanstalk", resource_id="prod")
    )
    assert analysis.classification is Classification.NORMAL
    assert analysis.severity is Severity.LOW
    assert analysis.confidence < 0.8
    assert analysis.plan == ()


def test_an_event_kind_without_rules_is_recorded_only() -> None:
    event = NormalizedEvent(
        event_id="x",
        source="aws.batch",
        detail_type="Batch Job State Change",
        resource_type="batch",
        resource_id="job-1",
        action="FAILED",
        time=datetime(2026, 11, 25, tzinfo=UTC),
    )
    analysis = rules.judge(event)
    assert analysis.classification is Classification.NORMAL
    assert analysis.plan == ()
    assert "no rule for 'Batch Job State Change'" in analysis.reasons[0]


def test_reasons_never_carry_control_characters() -> None:
    event = call("DeleteTable", resource_type="dynamodb", principal="arn:x\n\x1b[2Jevil")
    analysis = rules.judge(event)
    assert all("\n" not in r and "\x1b" not in r for r in analysis.reasons)
