"""The policy over the model's advice (guard.py): rules referee, the plan never widens."""

from __future__ import annotations

import pytest

from aiops_agent.analysis.guard import intersect, reconcile
from aiops_agent.analysis.schema import ModelPlanStep, ModelVerdict
from aiops_agent.domain.models import Analysis, Classification, PlanStep, Severity

C = Classification
START = PlanStep(action="ec2.start_instances", params={"instance_id": "i-0abc"})
RESTORE = PlanStep(action="iac.restore", params={"resource_type": "ec2", "resource_id": "i-0abc"})


def rules(
    cls: Classification = C.FAILURE,
    plan: tuple[PlanStep, ...] = (START,),
    *,
    confidence: float = 0.9,
    approval: bool = False,
) -> Analysis:
    return Analysis(
        classification=cls,
        confidence=confidence,
        severity=Severity.HIGH,
        reasons=("rules reason",),
        plan=plan,
        requires_approval=approval,
    )


def model(
    cls: Classification = C.FAILURE,
    plan: list[tuple[str, dict[str, object]]] | None = None,
    *,
    confidence: float = 0.95,
    reasons: tuple[str, ...] = ("model reason",),
) -> ModelVerdict:
    steps = [ModelPlanStep(action=a, params=p) for a, p in (plan or [])]
    return ModelVerdict(
        classification=cls,
        confidence=confidence,
        severity=Severity.MEDIUM,
        reasons=list(reasons),
        impact="web tier down",
        plan=steps,
    )


def test_agreement_uses_model_words_and_rules_params() -> None:
    out = reconcile(
        model(plan=[("ec2.start_instances", {"instance_id": "i-attacker"})]),
        rules(),
        threshold=0.8,
    )
    assert out.analyzer == "bedrock"
    assert out.classification is C.FAILURE
    assert out.reasons[:2] == ("model reason", "impact: web tier down")
    assert out.plan == (START,)  # the rules' params, never the model's
    assert out.plan[0].params["instance_id"] == "i-0abc"
    assert out.requires_approval is False
    assert out.confidence == 0.95


def test_model_cannot_add_an_action_the_rules_did_not_plan() -> None:
    advice = model(plan=[("ec2.start_instances", {}), ("iac.restore", {"resource_id": "prod"})])
    out = reconcile(advice, rules(), threshold=0.8)
    assert [s.action for s in out.plan] == ["ec2.start_instances"]
    assert any("iac.restore" in r and "not run" in r for r in out.reasons)


def test_model_may_drop_a_step() -> None:
    out = reconcile(model(plan=[("iac.restore", {})]), rules(plan=(START, RESTORE)), threshold=0.8)
    assert out.plan == (RESTORE,)
    assert any("advised against ec2.start_instances" in r for r in out.reasons)


@pytest.mark.parametrize("rules_cls", [C.FAILURE, C.TAMPERING])
@pytest.mark.parametrize("model_cls", [C.NORMAL, C.ANOMALY])
def test_disagreement_on_destructive_keeps_rules_and_goes_to_review(
    rules_cls: Classification, model_cls: Classification
) -> None:
    out = reconcile(model(model_cls, confidence=0.99), rules(rules_cls), threshold=0.8)
    assert out.classification is rules_cls
    assert out.requires_approval is True
    assert any("manual review" in r for r in out.reasons)
    assert "rules: rules reason" in out.reasons
    assert out.plan == (START,)  # offered for approval; still only the rules' plan
    assert out.confidence == 0.9


def test_failure_versus_tampering_is_a_disagreement_too() -> None:
    out = reconcile(model(C.TAMPERING), rules(C.FAILURE), threshold=0.8)
    assert out.classification is C.FAILURE
    assert out.requires_approval is True


def test_model_escalation_of_a_normal_event_runs_nothing_and_asks_a_human() -> None:
    out = reconcile(
        model(C.FAILURE, plan=[("iac.restore", {})]), rules(C.NORMAL, plan=()), threshold=0.8
    )
    assert out.classification is C.FAILURE
    assert out.plan == ()
    assert out.requires_approval is True
    assert any("no automated action, manual review" in r for r in out.reasons)


def test_low_model_confidence_requires_approval() -> None:
    out = reconcile(model(confidence=0.42, plan=[]), rules(), threshold=0.8)
    assert out.requires_approval is True
    assert out.confidence == 0.42
    assert any("0.42 below 0.80" in r for r in out.reasons)
    assert out.plan == (START,)  # the reviewer sees the rules' plan


def test_rules_approval_requirement_survives_agreement() -> None:
    out = reconcile(model(plan=[("ec2.start_instances", {})]), rules(approval=True), threshold=0.8)
    assert out.requires_approval is True


def test_model_reasons_are_clipped_and_cleaned() -> None:
    out = reconcile(model(reasons=("a\x00b" + "x" * 1000,)), rules(), threshold=0.8)
    assert len(out.reasons[0]) <= 300
    assert "\x00" not in out.reasons[0]


def test_intersect_keeps_rules_order() -> None:
    kept, notes = intersect(
        model(plan=[("iac.restore", {}), ("ec2.start_instances", {})]), (START, RESTORE)
    )
    assert kept == (START, RESTORE)
    assert notes == []
