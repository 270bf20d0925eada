"""Rules for RDS's own events, by event id first, then by category, then by what it says.

RDS reports in `EventID` (`RDS-EVENT-0087`, instance stopped) and `EventCategories`; the message
says the same in words. Stopped, deleted, failed, out of storage: FAILURE, notified (no catalog
action starts or restores a database). A failover or an availability change: ANOMALY, notified.
Anything else (a backup, a patch, a configuration change the API call already reported) is
NORMAL, with RDS's own message as the reason.
"""

from __future__ import annotations

from aiops_agent.analysis.rules_base import event_rule, normal, notify, what
from aiops_agent.domain.models import Analysis, Classification, NormalizedEvent, Severity
from aiops_agent.intake.envelope import clip
from aiops_agent.intake.rds import RDS_EVENTS

STOPPED_IDS = frozenset({"RDS-EVENT-0087", "RDS-EVENT-0150"})
"""DB instance stopped; DB cluster stopped."""
DELETED_IDS = frozenset({"RDS-EVENT-0003", "RDS-EVENT-0022"})
STORAGE_IDS = frozenset({"RDS-EVENT-0007", "RDS-EVENT-0089", "RDS-EVENT-0227"})
_FAILURE_CATEGORIES = frozenset({"failure", "deletion", "low storage"})
_ANOMALY_CATEGORIES = frozenset({"failover", "availability", "recovery"})
_STOPPED_WORDS = ("stopped", "shutdown", "shut down")
_HELD = "no automated recovery for rds: notify only"


def _said(event: NormalizedEvent, categories: set[str]) -> str:
    code = event.details.get("event_code")
    message = clip(event.details.get("message") or event.action, 200)
    tag = ", ".join(sorted(categories)) or "event"
    return f"RDS {tag}{f' {clip(code, 32)}' if code else ''} on {what(event)}: {message}"


@event_rule(*RDS_EVENTS)
def rds_event(event: NormalizedEvent) -> Analysis:
    raw = event.details.get("categories")
    categories = {str(c) for c in raw} if isinstance(raw, list) else set()
    code = str(event.details.get("event_code") or "")
    message = str(event.details.get("message") or "").lower()
    said = _said(event, categories)
    snapshot = "snapshot" in event.detail_type.lower()
    if code in STOPPED_IDS or (
        not snapshot and "notification" in categories and any(w in message for w in _STOPPED_WORDS)
    ):
        return notify(Classification.FAILURE, said, _HELD, severity=Severity.HIGH)
    if code in DELETED_IDS | STORAGE_IDS or categories & _FAILURE_CATEGORIES:
        level = Severity.MEDIUM if snapshot else Severity.HIGH
        return notify(Classification.FAILURE, said, _HELD, severity=level)
    if categories & _ANOMALY_CATEGORIES:
        return notify(Classification.ANOMALY, said, "notify")
    return normal(0.8, said)
