"""The model advises; policy decides: a pure function of the model's verdict and the rules' view.

1. Where the rules find the event destructive (FAILURE) or tampering and the model classifies it
   otherwise, the rules' classification stands, the reasons say the incident goes to manual
   review, and approval is required. Where the model flags as FAILURE or TAMPERING an event the
   rules find harmless, its classification is kept (nothing can run: the rules' plan is empty)
   and approval is required: a human looks.
2. A model confidence below the threshold requires approval.
3. The plan is the rules' plan, kept only for the actions the model also chose: intersection by
   action name, in the rules' order, with the rules' params. The model can drop a step, never
   add one, and never set a parameter. When the incident goes to manual review (1 or 2), the
   reviewer is offered the rules' plan itself: still nothing the rules would not run, and only
   after a human approves it.
4. Whatever the rules required approval for (a replay, an ECS redeployment) still needs it.
"""

from __future__ import annotations

from aiops_agent.domain.models import Analysis, Classification, PlanStep
from aiops_agent.intake.envelope import clip

from .schema import MAX_REASON_CHARS, ModelVerdict

DESTRUCTIVE: frozenset[Classification] = frozenset(
    {Classification.FAILURE, Classification.TAMPERING}
)
ANALYZER_NAME = "bedrock"


def reconcile(verdict: ModelVerdict, rules: Analysis, *, threshold: float) -> Analysis:
    """The analysis the agent acts on, given the model's verdict and the rules' analysis."""
    reasons = [clip(r, MAX_REASON_CHARS) for r in verdict.reasons if r.strip()]
    if verdict.impact.strip():
        reasons.append(f"impact: {clip(verdict.impact, MAX_REASON_CHARS)}")
    classification = verdict.classification
    confidence = verdict.confidence
    severity = verdict.severity
    review = False

    if verdict.classification is not rules.classification:
        if rules.classification in DESTRUCTIVE:
            classification = rules.classification
            confidence = min(verdict.confidence, rules.confidence)
            severity = rules.severity
            reasons.append(
                f"model says {verdict.classification.value}, rules say "
                f"{rules.classification.value}: rules' classification kept, manual review"
            )
            reasons.extend(f"rules: {r}" for r in rules.reasons)
            review = True
        elif verdict.classification in DESTRUCTIVE:
            reasons.append(
                f"model says {verdict.classification.value}, rules say "
                f"{rules.classification.value}: no automated action, manual review"
            )
            review = True

    if verdict.confidence < threshold:
        reasons.append(
            f"model confidence {verdict.confidence:.2f} below {threshold:.2f}: manual review"
        )
        review = True

    plan, notes = intersect(verdict, rules.plan)
    if review and rules.plan:
        plan = rules.plan
        notes = [n for n in notes if not n.startswith("model advised against")]
        notes.append(f"plan for approval: the rules' plan ({', '.join(s.action for s in plan)})")
    reasons.extend(notes)
    return Analysis(
        classification=classification,
        confidence=confidence,
        severity=severity,
        reasons=tuple(reasons),
        plan=plan,
        requires_approval=review or rules.requires_approval,
        analyzer=ANALYZER_NAME,
        intended=rules.intended and classification is Classification.NORMAL,
    )


def intersect(
    verdict: ModelVerdict, rules_plan: tuple[PlanStep, ...]
) -> tuple[tuple[PlanStep, ...], list[str]]:
    """The rules' steps whose action the model also chose, and notes on what was dropped."""
    proposed = [step.action for step in verdict.plan]
    allowed = {step.action for step in rules_plan}
    kept = tuple(step for step in rules_plan if step.action in proposed)
    notes: list[str] = []
    extra = sorted({a for a in proposed if a not in allowed})
    if extra:
        notes.append(
            f"model proposed {', '.join(clip(a, 64) for a in extra)}: not in the rules' plan, "
            "not run"
        )
    dropped = sorted({s.action for s in rules_plan if s.action not in proposed})
    if dropped:
        notes.append(f"model advised against {', '.join(dropped)}: left out of the plan")
    return kept, notes
