"""The time-to-recovery benchmark's arithmetic and words: where an incident's time went, and
what the report says of it (no daemon run; tests/e2e/test_bench_recovery_stops.py runs the
scenarios' stops against the emulator)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiops_agent.domain.models import Incident, NormalizedEvent, TimelineEntry, WorkflowState
from aiops_agent.intake.attribution import state_reason_origin
from bench.recovery import aggregate, measure_incident, report_lines, state_durations
from bench.recovery_cases import (
    PERSON_STOP,
    PERSON_STOP_RECORDED,
    RECORD_AFTER_S,
    STOPPED_STATES,
    SYSTEM_STOP,
    SYSTEM_STOP_CODE,
    SYSTEM_STOP_MESSAGE,
    cases,
)
from bench.report import render

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
    assert aggregate([{"a": missing}])["a"]["measured"] == 0


def test_the_time_ends_at_the_verified_outcome_not_the_notification() -> None:
    notified_later = incident(
        (0.5, W.ANALYZING),
        (1.0, W.EXECUTING),
        (4.0, W.VERIFYING),
        (9.0, W.COMPLETED),  # verification passed
        (12.0, W.COMPLETED),  # notification sent
    )
    got = measure_incident(notified_later, T0)
    assert got["seconds"] == 9.0
    assert "COMPLETED" not in got["by_state_s"]
    assert got["agent_s"] + got["waits_on_aws_s"] + got["other_s"] == got["seconds"]
    assert got["waits_on_aws_s"] == 8.0 and got["other_s"] == 0.0


def test_a_persons_approval_is_neither_the_agents_part_nor_aws() -> None:
    approved = incident(
        (0.5, W.PLANNING),
        (1.0, W.AWAITING_APPROVAL),
        (61.0, W.EXECUTING),
        (62.0, W.COMPLETED),
    )
    got = measure_incident(approved, T0)
    assert (got["agent_s"], got["waits_on_aws_s"], got["other_s"]) == (1.0, 1.0, 60.0)


class Reasons:
    def __init__(self) -> None:
        self.set: list[dict[str, Any]] = []

    def state_reason(self, instance_id: str, **kwargs: Any) -> None:
        self.set.append({"instance_id": instance_id, **kwargs})


def test_every_scenario_the_issue_names_is_measured() -> None:
    names = [c.name for c in cases(Reasons())]
    assert names == [
        PERSON_STOP,
        PERSON_STOP_RECORDED,
        SYSTEM_STOP,
        "instance terminated",
        "function deleted",
        "parameter tampered",
        "security group opened to the world",
    ]


def test_the_system_stop_reads_as_a_system_stop_to_the_agent() -> None:
    """What the proxy is told to report must be what the agent calls a system's stop, and it
    must cover both states a stop passes through."""
    assert state_reason_origin(SYSTEM_STOP_CODE, SYSTEM_STOP_CODE) == "system"
    assert SYSTEM_STOP_MESSAGE.startswith(f"{SYSTEM_STOP_CODE}: ")
    assert set(STOPPED_STATES) == {"stopping", "stopped"}


def _row(*timelines: tuple[tuple[float, WorkflowState], ...]) -> list[dict[str, Any]]:
    return [measure_incident(incident(*t), T0) for t in timelines]


PERSON = ((0.2, W.ANALYZING), (0.3, W.PLANNING), (121.0, W.EXECUTING), (121.5, W.COMPLETED))
SYSTEM = ((0.2, W.ANALYZING), (0.3, W.PLANNING), (1.0, W.EXECUTING), (1.5, W.COMPLETED))
BUILD = ((0.2, W.ANALYZING), (0.3, W.PLANNING), (1.0, W.EXECUTING), (2.0, W.VERIFYING))
BUILT = (*BUILD, (30.0, W.COMPLETED))


def result(system: tuple[tuple[float, WorkflowState], ...] = SYSTEM) -> dict[str, Any]:
    rounds = [
        {PERSON_STOP: p, SYSTEM_STOP: s, "function deleted": b}
        for p, s, b in zip(
            _row(PERSON, PERSON, PERSON),
            _row(system, system, system),
            _row(BUILT, BUILT, BUILT),
            strict=True,
        )
    ]
    return {
        "rounds": 3,
        "every_s": 30.0,
        "run_seconds": 300.0,
        "seed_promise_s": 25.0,
        "changed_settings": {"AIOPS_BREAKER_THRESHOLD": "1000000000"},
        "system_stop": {
            "state_reason_code": SYSTEM_STOP_CODE,
            "state_reason_reads": 6,
            "runs_read": 3,
        },
        "scenarios": aggregate(rounds),
        "method": "m",
    }


def test_the_report_says_what_the_numbers_say() -> None:
    text = "\n".join(report_lines(result()))
    assert "3 rounds of 3 scenarios, a round started every 30 s" in text
    assert "except AIOPS_BREAKER_THRESHOLD=1000000000" in text
    assert f"1 of 3 scenarios are within it at the median ({SYSTEM_STOP}) and 1 at p95" in text
    assert (
        f"- **{PERSON_STOP}**: p50 121.5 s, p95 121.5 s (3 of 3 runs measured, from 121.5 to "
        "121.5 s; COMPLETED). "
        "Mostly the agent's own: the agent's part 121 s at the median (most of it PLANNING "
        "120.7 s), waiting on AWS 0.5 s"
    ) in text
    assert "- **function deleted**: p50 30 s" in text
    assert "Mostly waiting on AWS: the agent's part 1 s" in text
    assert "(most of it VERIFYING 28 s)" in text
    assert (
        "A stop by a system fault is recovered in 1.5 s at the median, 120.0 s sooner than a "
        "person's stop (121.5 s); 120.0 s of the difference is PLANNING"
    ) in text
    assert f"the agent read the instance's StateReason, {SYSTEM_STOP_CODE}, in 3 of 3 runs" in text
    assert "slowest spent" not in text  # every scenario's runs alike here


def test_the_report_names_where_an_outlying_run_spent_its_time() -> None:
    """A scenario whose runs sometimes wait for an author: the median is fast, the slowest run
    spent its time in PLANNING, and the report says so."""
    rounds = [{"terminated": r} for r in _row(BUILT, BUILT, PERSON)]
    r = {**result(), "scenarios": aggregate(rounds)}
    text = "\n".join(report_lines(r))
    assert "p50 30 s, p95 112.35 s (3 of 3 runs measured, from 30 to 121.5 s; the slowest " in text
    assert "the slowest spent 120.7 s in PLANNING; COMPLETED)" in text


def test_the_report_says_when_a_system_stop_waited_like_a_persons() -> None:
    text = "\n".join(report_lines(result(system=PERSON)))
    assert "no less than a person's stop (121.5 s): it did not skip the wait" in text
    assert "sooner" not in text


def test_the_benchmarks_report_renders_the_recovery_section(tmp_path: Path) -> None:
    document = {"benchmark": "recovery", "code": {"commit": "abc", "dirty": []}, **result()}
    (tmp_path / "recovery.json").write_text(json.dumps(document))
    text = render(tmp_path)
    assert "## Time to recovery" in text
    assert "\n".join(report_lines(result())) in text


async def test_the_persons_recorded_stop_sends_its_cloudtrail_record_later() -> None:
    (recorded,) = [c for c in cases(Reasons()) if c.name == PERSON_STOP_RECORDED]
    assert recorded.later is not None
    delay, act = recorded.later
    assert delay == RECORD_AFTER_S > 0

    class Region:
        region = "us-east-1"

    (entry,) = await act(Region(), {"instance_id": "i-0abc"})  # type: ignore[arg-type]
    detail = json.loads(entry["Detail"])
    assert entry["DetailType"] == "AWS API Call via CloudTrail"
    assert detail["eventName"] == "StopInstances"
    assert detail["userIdentity"]["arn"].endswith(":user/mallory")
    items = detail["requestParameters"]["instancesSet"]["items"]
    assert items == [{"instanceId": "i-0abc"}]
