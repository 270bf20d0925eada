"""What AWS reclaims is not recovered: a Spot instance's stop or termination after its
interruption warning is suppressed, through the real engine, store and planner; and every event
is counted by its kind, with bounded labels."""

from __future__ import annotations

from datetime import timedelta

from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.domain.models import Analysis, NormalizedEvent
from aiops_agent.domain.models import WorkflowState as S
from aiops_agent.intake.envelope import parse_event
from tests.conftest import MORE_EVENTS_DIR
from tests.unit.test_engine import T0, FixedAnalyzer, ev, metric, rig

INSTANCE = "i-0b662ef9931388ba0"


class RulesForNotices:
    """The rules judge the Spot warning; the stop gets a scripted recovery plan."""

    name = "rules-for-notices"

    async def analyze(self, event: NormalizedEvent) -> Analysis:
        if event.action.startswith("spot:"):
            return RulesAnalyzer().judge(event)
        return await FixedAnalyzer().analyze(event)


def spot_warning(at_offset_s: int = -120, instance: str = INSTANCE) -> NormalizedEvent:
    (event,) = parse_event((MORE_EVENTS_DIR / "ec2_spot_itn_nth.json").read_bytes())
    return event.model_copy(
        update={"time": T0 + timedelta(seconds=at_offset_s), "resource_id": instance}
    )


async def test_the_stop_of_a_reclaimed_spot_instance_is_not_recovered() -> None:
    r = rig(analyzer=RulesForNotices())
    warned = await r.engine.handle_event(spot_warning())
    assert warned is not None and warned.workflow_state is S.NOTIFIED
    assert warned.pending == () and r.action.executed == []
    r.clock.advance(120)  # two minutes later EC2 reports the stop, without an author
    stopped = await r.engine.handle_event(
        ev("state-1", resource_id=INSTANCE, at=T0 + timedelta(seconds=120))
    )
    assert stopped is not None and stopped.workflow_state is S.SUPPRESSED
    assert "AWS reclaimed this Spot instance" in stopped.timeline[-1].detail
    assert r.action.executed == []
    assert metric(r, "aiops_suppressions_total", {"reason": "spot_reclaimed"}) == 1


async def test_another_instances_warning_does_not_stop_a_recovery() -> None:
    r = rig(analyzer=RulesForNotices())
    await r.engine.handle_event(spot_warning(instance="i-0aaaaaaaaaaaaaaaa"))
    r.clock.advance(120)
    stopped = await r.engine.handle_event(
        ev("state-1", resource_id=INSTANCE, at=T0 + timedelta(seconds=120))
    )
    assert stopped is not None and stopped.workflow_state is S.COMPLETED
    assert len(r.action.executed) == 1


async def test_a_warning_long_before_the_stop_does_not_count() -> None:
    r = rig(analyzer=RulesForNotices())
    await r.engine.handle_event(spot_warning())
    r.clock.advance(3 * 3600)
    later = ev("state-2", resource_id=INSTANCE, at=T0 + timedelta(hours=3))
    stopped = await r.engine.handle_event(later)
    assert stopped is not None and stopped.workflow_state is S.COMPLETED


async def test_events_are_counted_by_kind_with_bounded_labels() -> None:
    r = rig(analyzer=RulesForNotices())
    await r.engine.handle_event(spot_warning())
    (generic,) = parse_event((MORE_EVENTS_DIR / "inspector2_finding_notifyslack.json").read_bytes())
    odd = generic.model_copy(
        update={"event_id": "odd", "source": "aws.brand-new", "detail_type": "Made Up 123"}
    )
    await r.engine.handle_event(generic)
    await r.engine.handle_event(odd)
    name = "aiops_event_kinds_total"
    spot = {
        "source": "aws.ec2",
        "detail_type": "EC2 Spot Instance Interruption Warning",
        "normalizer": "specific",
    }
    inspector = {
        "source": "aws.inspector2",
        "detail_type": "Inspector2 Finding",
        "normalizer": "generic",
    }
    other = {"source": "other", "detail_type": "other", "normalizer": "generic"}
    assert metric(r, name, spot) == 1
    assert metric(r, name, inspector) == 1
    assert metric(r, name, other) == 1
