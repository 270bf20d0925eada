"""The domain's value types: events, analyses, plans and incidents.

Pure data: no I/O, no clock reads, no asyncio. Everything here is a pydantic model so that it
serialises to the incident store and to `--json` output in one well-defined shape.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Classification(StrEnum):
    FAILURE = "FAILURE"
    TAMPERING = "TAMPERING"
    ANOMALY = "ANOMALY"
    NORMAL = "NORMAL"


class WorkflowState(StrEnum):
    RECEIVED = "RECEIVED"
    ANALYZING = "ANALYZING"
    PLANNING = "PLANNING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    EXECUTING = "EXECUTING"
    VERIFYING = "VERIFYING"
    COMPLETED = "COMPLETED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    SUPPRESSED = "SUPPRESSED"
    NOTIFIED = "NOTIFIED"
    IGNORED = "IGNORED"
    REJECTED = "REJECTED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[WorkflowState] = frozenset(
    {
        WorkflowState.COMPLETED,
        WorkflowState.PARTIAL,
        WorkflowState.FAILED,
        WorkflowState.SUPPRESSED,
        WorkflowState.NOTIFIED,
        WorkflowState.IGNORED,
        WorkflowState.REJECTED,
    }
)
OPEN_STATES: tuple[WorkflowState, ...] = tuple(s for s in WorkflowState if not s.terminal)


class Severity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NormalizedEvent(_Frozen):
    """One event about one resource, whatever its source and shape."""

    event_id: str
    source: str
    detail_type: str
    resource_type: str
    resource_id: str
    region: str = "us-east-1"
    account: str | None = None
    action: str
    """The API call (`TerminateInstances`) or the observed state (`state:stopped`)."""
    time: datetime
    principal: str | None = None
    principal_type: str | None = None
    invoked_by: str | None = None
    user_agent: str | None = None
    succeeded: bool = True
    error_code: str | None = None
    read_only: bool = False
    replayed: bool = False
    details: dict[str, Any] = Field(default_factory=dict)
    """Small, normalizer-chosen facts (state, tags, request parameters) the rules may use."""

    @property
    def resource_key(self) -> str:
        return resource_key(self.resource_type, self.region, self.resource_id)


def resource_key(resource_type: str, region: str, resource_id: str) -> str:
    return f"{resource_type}:{region}:{resource_id}"


def incident_id_for(event_id: str, key: str) -> str:
    """Deterministic incident id: a redelivered event maps onto the incident it already made."""
    digest = hashlib.sha256(f"{event_id}|{key}".encode()).hexdigest()
    return f"inc-{digest[:20]}"


class PlanStep(_Frozen):
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class Analysis(_Frozen):
    classification: Classification
    confidence: float = Field(ge=0.0, le=1.0)
    severity: Severity = Severity.MEDIUM
    reasons: tuple[str, ...] = ()
    plan: tuple[PlanStep, ...] = ()
    requires_approval: bool = False
    analyzer: str = "rules"
    intended: bool = False
    """NORMAL because of who made the change: the agent, its recovery project, a trusted
    principal or EC2 Auto Scaling. Such a call explains the same change reported without its
    author (an EC2 state change, a Parameter Store Change)."""


class ActionRecord(_Frozen):
    """What one plan step did: kept in the incident as `recovery_actions`."""

    step: int
    action: str
    status: str  # STARTED | SUCCEEDED | FAILED | DRY_RUN
    started_at: datetime
    finished_at: datetime | None = None
    detail: str = ""
    result: dict[str, Any] = Field(default_factory=dict)


class Verification(_Frozen):
    status: str  # PENDING | PASSED | FAILED | PARTIAL | SKIPPED
    checks: tuple[dict[str, Any], ...] = ()
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    detail: str = ""


class Autonomy(StrEnum):
    """How much the agent may do about a resource (CONTRACT.md, "Who decides")."""

    OFF = "off"
    NOTIFY = "notify"
    ASK = "ask"
    ACT = "act"


class PolicyDecision(_Frozen):
    """The one policy decision of an incident: `incidents show --json` shows it as `policy`."""

    autonomy: Autonomy
    because: str
    silence_id: str | None = None
    """The silence that matched (the incident is SUPPRESSED, not IGNORED), if any."""
    tier: str = "standard"
    cooldown_minutes: float | None = None
    """The resource's cooldown by its `aiops:tier` tag (None: the planner's default)."""


class TimelineEntry(_Frozen):
    at: datetime
    state: WorkflowState
    detail: str


TIMELINE_HEAD = 20
TIMELINE_TAIL = 200
RELATED_IDS_KEPT = 500
"""An incident is one DynamoDB item (400 KB at most): an open incident that keeps receiving
related events keeps its first TIMELINE_HEAD and last TIMELINE_TAIL timeline entries (the rest
is in the audit trail) and the ids of its newest RELATED_IDS_KEPT related events."""


class Incident(_Frozen):
    incident_id: str
    event_id: str
    resource_type: str
    resource_id: str
    region: str
    resource_key: str
    workflow_state: WorkflowState = WorkflowState.RECEIVED
    classification: Classification | None = None
    confidence: float | None = None
    severity: Severity | None = None
    reasons: tuple[str, ...] = ()
    plan: tuple[PlanStep, ...] = ()
    recovery_actions: tuple[ActionRecord, ...] = ()
    verification: Verification | None = None
    timeline: tuple[TimelineEntry, ...] = ()
    timeline_elided: int = 0
    """Timeline entries dropped from the middle to keep the item small (TIMELINE_HEAD first and
    TIMELINE_TAIL last entries are kept); every entry stays in the audit trail."""
    related_event_ids: tuple[str, ...] = ()
    """The newest RELATED_IDS_KEPT related events' ids (replays of these are ignored)."""
    related_events: int = 0
    """How many related events joined in all."""
    approved_by: str | None = None
    explained_by: str | None = None
    """A trusted call that explains the change, joined while a plan was being made: the plan's
    outcome closes the incident instead of running it."""
    authored_by: str | None = None
    """The principal of the call behind a change that was reported without its author (an EC2
    state change), from the call's CloudTrail record that joined later: not a trusted one, so
    the wait for the author is over."""
    approval_required: bool = False
    policy: PolicyDecision | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    """The resource's tags as read for the policy: a later sighting of a deleted resource uses
    them."""
    tags_read_at: datetime | None = None
    event: NormalizedEvent
    created_at: datetime
    updated_at: datetime
    next_check_at: datetime | None = None
    verify_deadline: datetime | None = None
    version: int = 0
    pending: tuple[dict[str, Any], ...] = ()
    """Commands decided but not yet carried out (a transactional outbox)."""

    @property
    def terminal(self) -> bool:
        return self.workflow_state.terminal

    def audit_index(self, position: int) -> int:
        """The position of timeline entry `position` in the full (audit) timeline."""
        return position if position < TIMELINE_HEAD else position + self.timeline_elided

    def to_public(self) -> dict[str, Any]:
        """The `incidents show --json` form (CONTRACT.md)."""
        data = self.model_dump(mode="json", exclude={"pending", "event"})
        data["event"] = {
            "source": self.event.source,
            "detail_type": self.event.detail_type,
            "action": self.event.action,
            "principal": self.event.principal,
            "time": self.event.time.isoformat(),
        }
        return data
