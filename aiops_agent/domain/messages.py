"""Signals (what happened) and commands (what to do next) of the incident state machine.

Both are plain, serialisable data. A command that `decide` emits is stored in the incident's
`pending` outbox together with the new state, then carried out; its outcome comes back as a
signal that names the command (`command_id`), which clears it from the outbox. A crash between
the save and the outcome leaves the command pending, and whoever resumes the incident runs it
again: every command is idempotent by construction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from aiops_agent.domain.models import Analysis, NormalizedEvent, PlanStep, PolicyDecision


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- signals


class EventReceived(_Msg):
    kind: Literal["event_received"] = "event_received"
    event: NormalizedEvent


class RelatedEvent(_Msg):
    """Another event about the resource of an open incident: it joins the timeline."""

    kind: Literal["related_event"] = "related_event"
    event: NormalizedEvent


class Analyzed(_Msg):
    kind: Literal["analyzed"] = "analyzed"
    command_id: str
    analysis: Analysis
    policy: PolicyDecision | None = None
    """How much the agent may do (domain/autonomy.py), decided with the analysis; None: no
    decision was made (a NORMAL event), and nothing limits the plan."""
    tags: dict[str, str] = Field(default_factory=dict)
    tags_read_at: datetime | None = None


class AnalysisFailed(_Msg):
    kind: Literal["analysis_failed"] = "analysis_failed"
    command_id: str
    error: str
    policy: PolicyDecision | None = None
    """The policy decision all the same: a silence or `off` keeps even this one quiet."""
    tags: dict[str, str] = Field(default_factory=dict)
    tags_read_at: datetime | None = None


class PlanReady(_Msg):
    kind: Literal["plan_ready"] = "plan_ready"
    command_id: str
    steps: tuple[PlanStep, ...]
    requires_approval: bool = False
    """An action of the plan is one the catalog says a person must approve."""
    note: str = ""
    """Why the plan goes ahead as it does (e.g. why no author was waited for): in the timeline."""


class Suppressed(_Msg):
    """The planner refused to act: cooldown, an active recovery elsewhere, a breaker."""

    kind: Literal["suppressed"] = "suppressed"
    command_id: str
    reason: str


class PlanDeferred(_Msg):
    """Back off: an earlier attempt on this resource did not hold; plan again at `until`."""

    kind: Literal["plan_deferred"] = "plan_deferred"
    command_id: str
    until: datetime
    reason: str


class Escalated(_Msg):
    """Autonomous recovery stops here (attempts used up, the fix did not hold): a person decides."""

    kind: Literal["escalated"] = "escalated"
    command_id: str
    reason: str


class Approved(_Msg):
    kind: Literal["approved"] = "approved"
    by: str
    reason: str = ""


class Rejected(_Msg):
    kind: Literal["rejected"] = "rejected"
    by: str
    reason: str = ""


class StepSucceeded(_Msg):
    kind: Literal["step_succeeded"] = "step_succeeded"
    command_id: str
    step: int
    detail: str = ""
    result: dict[str, Any] = Field(default_factory=dict)


class StepFailed(_Msg):
    kind: Literal["step_failed"] = "step_failed"
    command_id: str
    step: int
    error: str


class VerifyResult(_Msg):
    kind: Literal["verify_result"] = "verify_result"
    command_id: str
    status: Literal["PASSED", "FAILED", "PARTIAL", "PENDING"]
    checks: tuple[dict[str, Any], ...] = ()
    detail: str = ""


class Tick(_Msg):
    """A stored wait (`next_check_at`) has come due."""

    kind: Literal["tick"] = "tick"


class Notified(_Msg):
    kind: Literal["notified"] = "notified"
    command_id: str
    ok: bool = True
    detail: str = ""


Signal = Annotated[
    EventReceived
    | RelatedEvent
    | Analyzed
    | AnalysisFailed
    | PlanReady
    | PlanDeferred
    | Escalated
    | Suppressed
    | Approved
    | Rejected
    | StepSucceeded
    | StepFailed
    | VerifyResult
    | Tick
    | Notified,
    Field(discriminator="kind"),
]

# ---------------------------------------------------------------- commands


class Analyze(_Msg):
    kind: Literal["analyze"] = "analyze"
    id: str = "analyze"


class Plan(_Msg):
    """Check cooldown and leases, and resolve the proposed steps against the action catalog."""

    kind: Literal["plan"] = "plan"
    id: str
    steps: tuple[PlanStep, ...]


class ExecuteStep(_Msg):
    kind: Literal["execute_step"] = "execute_step"
    id: str
    step: int
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_token: str


class Verify(_Msg):
    kind: Literal["verify"] = "verify"
    id: str
    attempt: int


class Notify(_Msg):
    kind: Literal["notify"] = "notify"
    id: str
    subject: str
    message: str


Command = Annotated[Analyze | Plan | ExecuteStep | Verify | Notify, Field(discriminator="kind")]

SIGNAL_ADAPTER: TypeAdapter[Signal] = TypeAdapter(Signal)
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def command_to_dict(command: Command) -> dict[str, Any]:
    return command.model_dump(mode="json")


def command_from_dict(data: dict[str, Any]) -> Command:
    return COMMAND_ADAPTER.validate_python(data)
