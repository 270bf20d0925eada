"""Which events without an author report the effect of which API call.

EC2 reports an instance's new state, and Parameter Store a parameter's change, within seconds
and without saying who made it; the CloudTrail record of the call, with its principal, comes
separately (sometimes first, usually later). This table pairs the two, so that an intended
call (a trusted principal's, the agent's own, EC2 Auto Scaling's) explains the report of its
own effect, and a report is not taken for a new failure.
"""

from __future__ import annotations

from aiops_agent.domain.models import Incident, NormalizedEvent, WorkflowState

REPORTED_AS: dict[tuple[str, str], frozenset[str]] = {
    ("ec2", "StopInstances"): frozenset({"state:stopping", "state:stopped"}),
    ("ec2", "TerminateInstances"): frozenset({"state:shutting-down", "state:terminated"}),
    ("ssm", "PutParameter"): frozenset({"Create", "Update"}),
    ("ssm", "DeleteParameter"): frozenset({"Delete"}),
    ("ssm", "DeleteParameters"): frozenset({"Delete"}),
}
"""(resource type, API call) -> the `action` of the author-less events that report its effect:
the EC2 Instance State-change Notification's state, the Parameter Store Change's operation."""


def reported_as(call: NormalizedEvent) -> frozenset[str]:
    """The actions of the author-less reports of this call's effect (empty: none exist)."""
    if not call.principal or not call.succeeded or call.read_only:
        return frozenset()
    return REPORTED_AS.get((call.resource_type, call.action), frozenset())


def explains(call: NormalizedEvent, report: NormalizedEvent) -> bool:
    """Whether `report` (no author) may be the report of `call`'s effect on the same resource."""
    return (
        not report.principal
        and report.resource_key == call.resource_key
        and report.action in reported_as(call)
    )


def recorded_explanation(recorded: Incident, report: NormalizedEvent) -> NormalizedEvent | None:
    """The intended call a recorded (IGNORED) incident stands for, if it explains `report`."""
    call = recorded.event
    if recorded.workflow_state is WorkflowState.IGNORED and call is not None:
        return call if explains(call, report) else None
    return None


# ---------------------------------------------------------------- who stopped an instance

SYSTEM_STATE_REASONS = frozenset(
    {
        "Server.InternalError",
        "Server.ScheduledStop",
        "Server.SpotInstanceShutdown",
        "Server.SpotInstanceTermination",
        "Server.InsufficientInstanceCapacity",
        "Client.InstanceInitiatedShutdown",
        "Client.InternalError",
        "Client.VolumeLimitExceeded",
        "Client.InvalidSnapshot.NotFound",
    }
)
"""EC2 `StateReason` codes of a stop or termination no API caller made (EC2 API reference,
StateReason): a host failure, a scheduled retirement, a Spot interruption, the instance's own
OS shutting down, a launch that could not complete. No CloudTrail record will name an author."""
USER_STATE_REASONS = frozenset({"Client.UserInitiatedShutdown", "Client.UserInitiatedHibernate"})
"""A stop requested through the API (or the console): a person or a pipeline made it."""

Origin = str
"""`system`, `user`, or `unknown`."""


def state_reason_origin(code: str | None, transition_reason: str | None) -> Origin:
    """Who caused an instance's current state, from DescribeInstances (pure).

    `StateReason.Code` decides; without one, `StateTransitionReason` (`User initiated (...)`,
    `Service initiated`, `Server.ScheduledStop`) does.
    """
    if code in SYSTEM_STATE_REASONS:
        return "system"
    if code in USER_STATE_REASONS:
        return "user"
    text = (transition_reason or "").strip()
    if text.startswith("User initiated"):
        return "user"
    if text.startswith("Service initiated") or text.split(" ", 1)[0] in SYSTEM_STATE_REASONS:
        return "system"
    return "unknown"
