"""Rules for security findings (GuardDuty, Security Hub) and for AWS events with no rule.

A finding is an ANOMALY at the finding's own severity, notified: the rules cannot tell a real
intrusion from a test, and no catalog action answers one. A finding that is archived,
suppressed, resolved or informational is NORMAL. An event of a kind the agent has no rule for
(the generic normalizer's) is judged by what it says of itself: a failed result or a finding's
severity notifies, anything else is recorded as NORMAL.
"""

from __future__ import annotations

from aiops_agent.analysis.rules_base import event_rule, normal, notify, what
from aiops_agent.domain.models import Analysis, Classification, NormalizedEvent, Severity
from aiops_agent.intake.envelope import clip
from aiops_agent.intake.security_findings import FINDING_DETAIL_TYPES

_SEVERITIES = {s.value: s for s in Severity}


def severity(label: object) -> Severity | None:
    """A finding's label as ours; INFORMATIONAL (and unknown words) as None."""
    return _SEVERITIES.get(str(label or "").upper())


@event_rule(*FINDING_DETAIL_TYPES)
def finding(event: NormalizedEvent) -> Analysis:
    kind = clip(event.details.get("finding_type") or "finding", 96)
    title = clip(event.details.get("title") or "", 160)
    label = str(event.details.get("severity_label") or "MEDIUM").upper()
    said = f"{clip(event.detail_type, 40)}: {kind} on {what(event)}" + (
        f" ({title})" if title else ""
    )
    closed = event.details.get("closed") or ("archived" if event.details.get("archived") else None)
    if closed:
        return normal(0.85, f"{said}: {clip(closed, 32)}, nothing to do")
    level = severity(label)
    if level is None:
        return normal(0.8, f"{said}: {clip(label, 16).lower()}, recorded")
    return notify(
        Classification.ANOMALY,
        f"{said}: severity {label}",
        "a security finding: investigate; no automated response: notify",
        severity=level,
    )


def generic(event: NormalizedEvent) -> Analysis:
    """An AWS event of a kind without a rule: notify what reports a failure or a severity."""
    kind = f"'{clip(event.detail_type, 80)}' from {clip(event.source, 48)}"
    signal = event.details.get("signal")
    signal = signal if isinstance(signal, dict) else {}
    message = clip(event.details.get("message") or "", 160)
    said = f"{kind} on {what(event)}" + (f": {message}" if message else "")
    level = severity(signal.get("severity"))
    outcome = signal.get("outcome")
    if (level is not None and level is not Severity.LOW) or outcome == "failed":
        classification = Classification.FAILURE if outcome == "failed" else Classification.ANOMALY
        return notify(
            classification,
            said + (f" (severity {level.value})" if level is not None else " (failed)"),
            "no rule for this kind of event yet: notify only",
            confidence=0.8,
            severity=level or Severity.MEDIUM,
        )
    if level is Severity.LOW or outcome == "warning":
        return notify(
            Classification.ANOMALY,
            said,
            "no rule for this kind of event yet: notify only",
            confidence=0.8,
            severity=Severity.LOW,
        )
    return normal(0.6, f"no rule for {kind} yet: {what(event)} recorded, no action")
