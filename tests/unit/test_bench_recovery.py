"""The time-to-recovery benchmark's arithmetic: where an incident's time went (no daemon run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiops_agent.domain.models import Incident, NormalizedEvent, TimelineEntry, WorkflowState
from bench.recovery import aggregate, measure_incident, state_durations

T0 = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


def incident(*steps: tuple[float, WorkflowState]) -> Incident:
    timeline = tuple(
        TimelineEntry(at=T0 + timedelta(seconds=s), state=state, detail="") for s, state in steps
    )
    return Incident(
        incident_id="inc-1",
        event_id="ev-1",
        resource_type="ec2",
        resource_id="i-1",
        region="us-east-1",
        resource_key="ec2:us-east-1:i-1",
        event=NormalizedEvent(
            event_id="ev-1",
            source="aws.ec2",
            detail_type="EC2 Instance State-change Notification",
            resource_type="ec2",
            resource_id="i-1",
            action="state:stopped",
            time=T0,
        ),
        workflow_state=timeline[-1].state,
        timeline=timeline,
        created_at=timeline[0].at,
        updated_at=timeline[-1].at,
    )


W = WorkflowState
STOPPED = incident(
    (1.0, W.ANALYZING),
    (1.0, W.PLANNING),
    (121.0, W.EXECUTING),  # the wait for the change's author
    (121.5, W.VERIFYING),
    (131.5, W.COMPLETED),
)


def test_each_gap_is_charged_to_the_earlier_state() -> None:
    assert state_durations(STOPPED) == {
        "ANALYZING": 0.0,
        "PLANNING": 120.0,
        "EXECUTING": 0.5,
        "VERIFYING": 10.0,
    }


def test_the_agents_part_and_the_part_that_waits_on_aws() -> None:
    got = measure_incident(STOPPED, event_at=T0)
    assert got["seconds"] == 131.5
    assert got["intake_s"] == 1.0
    assert got["agent_s"] == 121.0  # intake 1 s + the 120 s wait while PLANNING
    assert got["waits_on_aws_s"] == 10.5


def test_aggregate_reports_percentiles_and_medians_per_scenario() -> None:
    fast = measure_incident(
        incident((0.5, W.ANALYZING), (1.0, W.EXECUTING), (3.0, W.COMPLETED)), T0
    )
    slow = measure_incident(STOPPED, T0)
    rounds = [{"a": fast}, {"a": slow}, {"a": fast}]
    row = aggregate(rounds)["a"]
    assert row["runs"] == 3 and row["outcomes"] == ["COMPLETED"]
    assert row["p50_s"] == 3.0
    assert 3.0 < row["p95_s"] <= 131.5
    missing = {"outcome": "none within the deadline", "seconds": None}
    assert aggregate([{"a": missing}])["a"]["p50_s"] is None
