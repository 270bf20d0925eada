"""The pure policy decision: every combination of tag x pause x freeze x silence, and its parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops_agent.domain.autonomy import (
    AutonomySettings,
    Freeze,
    Matcher,
    Pause,
    ResourceTags,
    Silence,
    decide_autonomy,
    tier_of,
)
from aiops_agent.domain.machine import decide
from aiops_agent.domain.messages import AnalysisFailed, Analyzed, EventReceived, PlanReady
from aiops_agent.domain.models import (
    Analysis,
    Autonomy,
    Classification,
    Incident,
    NormalizedEvent,
    PlanStep,
    PolicyDecision,
    WorkflowState,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
A = Autonomy


def incident(resource_id: str = "i-1", account: str | None = None) -> Incident:
    event = NormalizedEvent(
        event_id="ev-1",
        source="aws.ec2",
        detail_type="EC2 Instance State-change Notification",
        resource_type="ec2",
        resource_id=resource_id,
        region="eu-west-1",
        account=account,
        action="state:stopped",
        time=T0,
    )
    return Incident(
        incident_id="inc-1",
        event_id="ev-1",
        resource_type="ec2",
        resource_id=resource_id,
        region="eu-west-1",
        resource_key=event.resource_key,
        classification=Classification.FAILURE,
        event=event,
        created_at=T0,
        updated_at=T0,
    )


def silence(*matchers: str, sid: str = "sil-1", start: datetime = T0 - HOUR) -> Silence:
    return Silence(
        silence_id=sid,
        matchers=tuple(Matcher.parse(m) for m in matchers),
        starts_at=start,
        ends_at=start + 2 * HOUR,
        author="alice",
        reason="migration",
        created_at=start,
    )


def freeze(start: datetime = T0 - HOUR, end: datetime | None = T0 + HOUR) -> Freeze:
    return Freeze(
        freeze_id="frz-1",
        starts_at=start,
        ends_at=end,
        author="bob",
        reason="black friday",
        created_at=start,
    )


PAUSED = Pause(paused=True, by="carol", reason="bad deploy", since=T0 - HOUR)
RESUMED = Pause(
    paused=False, by="carol", reason="x", since=T0 - HOUR, resumed_by="carol", resumed_at=T0
)


def tags(autonomy: str | None, **more: str) -> ResourceTags:
    values = dict(more)
    if autonomy is not None:
        values["aiops:autonomy"] = autonomy
    return ResourceTags(tags=values, source="resource" if values else "none")


# Every combination: (tag aiops:autonomy, paused, frozen, silenced) -> (autonomy, silenced?).
# None = untagged (AIOPS_DEFAULT_AUTONOMY, default act). "SUPPRESSED" rows are off + a silence id.
TABLE: list[tuple[str | None, bool, bool, bool, Autonomy, bool]] = [
    # tag      paused frozen silenced -> autonomy   suppressed
    ("off", False, False, False, A.OFF, False),
    ("off", False, False, True, A.OFF, True),
    ("off", False, True, False, A.OFF, False),
    ("off", False, True, True, A.OFF, True),
    ("off", True, False, False, A.OFF, False),
    ("off", True, False, True, A.OFF, True),
    ("off", True, True, False, A.OFF, False),
    ("off", True, True, True, A.OFF, True),
    ("notify", False, False, False, A.NOTIFY, False),
    ("notify", False, False, True, A.OFF, True),
    ("notify", False, True, False, A.NOTIFY, False),
    ("notify", False, True, True, A.OFF, True),
    ("notify", True, False, False, A.NOTIFY, False),
    ("notify", True, False, True, A.OFF, True),
    ("notify", True, True, False, A.NOTIFY, False),
    ("notify", True, True, True, A.OFF, True),
    ("ask", False, False, False, A.ASK, False),
    ("ask", False, False, True, A.OFF, True),
    ("ask", False, True, False, A.ASK, False),
    ("ask", False, True, True, A.OFF, True),
    ("ask", True, False, False, A.ASK, False),
    ("ask", True, False, True, A.OFF, True),
    ("ask", True, True, False, A.ASK, False),
    ("ask", True, True, True, A.OFF, True),
    ("act", False, False, False, A.ACT, False),
    ("act", False, False, True, A.OFF, True),
    ("act", False, True, False, A.ASK, False),
    ("act", False, True, True, A.OFF, True),
    ("act", True, False, False, A.ASK, False),
    ("act", True, False, True, A.OFF, True),
    ("act", True, True, False, A.ASK, False),
    ("act", True, True, True, A.OFF, True),
    (None, False, False, False, A.ACT, False),
    (None, False, False, True, A.OFF, True),
    (None, False, True, False, A.ASK, False),
    (None, False, True, True, A.OFF, True),
    (None, True, False, False, A.ASK, False),
    (None, True, False, True, A.OFF, True),
    (None, True, True, False, A.ASK, False),
    (None, True, True, True, A.OFF, True),
]


def test_the_table_holds_every_combination() -> None:
    keys = {row[:4] for row in TABLE}
    assert len(keys) == len(TABLE) == 5 * 2 * 2 * 2


@pytest.mark.parametrize(("tag", "paused", "frozen", "silenced", "autonomy", "suppressed"), TABLE)
def test_decision_table(
    tag: str | None,
    paused: bool,
    frozen: bool,
    silenced: bool,
    autonomy: Autonomy,
    suppressed: bool,
) -> None:
    decision = decide_autonomy(
        incident(),
        tags(tag),
        [silence("resource_id=i-1")] if silenced else [],
        [freeze()] if frozen else [],
        PAUSED if paused else RESUMED,
        AutonomySettings(),
        T0,
    )
    assert decision.autonomy is autonomy
    assert (decision.silence_id == "sil-1") is suppressed
    because = decision.because
    if suppressed:
        assert "silence sil-1 (resource_id=i-1)" in because and "alice: migration" in because
    elif tag == "off":
        assert "aiops:autonomy=off" in because
    elif autonomy is A.ASK and tag != "ask":
        assert "act becomes ask" in because
        assert ("paused by carol" in because) is paused
        assert ("freeze frz-1" in because) is frozen
    elif tag is None:
        assert "AIOPS_DEFAULT_AUTONOMY=act" in because
    else:
        assert f"aiops:autonomy={tag}" in because


@pytest.mark.parametrize("default", list(Autonomy))
def test_untagged_resources_take_the_default(default: Autonomy) -> None:
    settings = AutonomySettings(default_autonomy=default)
    free = decide_autonomy(incident(), tags(None), [], [], None, settings, T0)
    held = decide_autonomy(incident(), tags(None), [], [], PAUSED, settings, T0)
    assert free.autonomy is default
    assert held.autonomy is (A.ASK if default is A.ACT else default)
    assert f"AIOPS_DEFAULT_AUTONOMY={default.value}" in free.because


def test_a_tag_beats_the_default_and_a_bad_tag_value_is_the_default() -> None:
    settings = AutonomySettings(default_autonomy=A.NOTIFY)
    assert decide_autonomy(incident(), tags("act"), [], [], None, settings, T0).autonomy is A.ACT
    assert decide_autonomy(incident(), tags(" ASK "), [], [], None, settings, T0).autonomy is A.ASK
    bad = decide_autonomy(incident(), tags("yes"), [], [], None, settings, T0)
    assert bad.autonomy is A.NOTIFY
    assert "'yes' is not off, notify, ask or act" in bad.because


@pytest.mark.parametrize(
    ("start", "end", "active"),
    [
        (T0 - HOUR, T0 + HOUR, True),
        (T0 - HOUR, None, True),  # a CLOSED change calendar with no next transition
        (T0 - 2 * HOUR, T0 - HOUR, False),  # over
        (T0 - HOUR, T0, False),  # ends now: over
        (T0 + HOUR, T0 + 2 * HOUR, False),  # not begun
        (T0, T0 + HOUR, True),  # begins now
    ],
)
def test_a_freeze_holds_only_while_it_lasts(
    start: datetime, end: datetime | None, active: bool
) -> None:
    decision = decide_autonomy(
        incident(), tags("act"), [], [freeze(start, end)], None, AutonomySettings(), T0
    )
    assert decision.autonomy is (A.ASK if active else A.ACT)


def test_a_change_calendar_freeze_says_so() -> None:
    calendar = freeze().model_copy(
        update={"source": "calendar", "author": "ssm", "reason": "calendar prod-freeze is CLOSED"}
    )
    decision = decide_autonomy(incident(), tags(None), [], [calendar], None, AutonomySettings(), T0)
    assert decision.autonomy is A.ASK
    assert "change calendar" in decision.because and "prod-freeze is CLOSED" in decision.because


@pytest.mark.parametrize(
    ("matchers", "start", "matches"),
    [
        (("resource_id=i-1",), T0 - HOUR, True),
        (("resource_id=i-*", "region=eu-*"), T0 - HOUR, True),
        (("resource_id=i-*", "region=us-*"), T0 - HOUR, False),  # every matcher must match
        (("resource_id=i-2",), T0 - HOUR, False),
        (("resource_id=I-1",), T0 - HOUR, False),  # case-sensitive, as AWS ids are
        (("resource_type=ec2", "classification=FAILURE"), T0 - HOUR, True),
        (("classification=ANOMALY",), T0 - HOUR, False),
        (("tag:team=payments",), T0 - HOUR, True),
        (("tag:team=search",), T0 - HOUR, False),
        (("tag:owner=*",), T0 - HOUR, True),  # an absent tag is "", which * matches
        (("tag:owner=?*",), T0 - HOUR, False),
        (("account=123456789012",), T0 - HOUR, True),  # the agent's account by default
        (("resource_id=i-1",), T0 - 3 * HOUR, False),  # expired
        (("resource_id=i-1",), T0 + HOUR, False),  # not begun
    ],
)
def test_silence_matchers(matchers: tuple[str, ...], start: datetime, matches: bool) -> None:
    settings = AutonomySettings(account="123456789012")
    decision = decide_autonomy(
        incident(),
        tags("act", team="payments"),
        [silence(*matchers, start=start)],
        [],
        None,
        settings,
        T0,
    )
    assert (decision.silence_id is not None) is matches


def test_the_event_account_is_matched_before_the_agent_account() -> None:
    settings = AutonomySettings(account="111111111111")
    sil = silence("account=222222222222")
    mine = decide_autonomy(incident(), tags(None), [sil], [], None, settings, T0)
    theirs = decide_autonomy(
        incident(account="222222222222"), tags(None), [sil], [], None, settings, T0
    )
    assert mine.silence_id is None and theirs.silence_id == "sil-1"


@pytest.mark.parametrize(
    "text", ["resource_id", "resource_id=", "owner=x", "tag:=x", "=x", "Resource_Id=x"]
)
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Matcher.parse(text)


@pytest.mark.parametrize(
    ("tier", "expected", "minutes"),
    [
        (None, "standard", 5.0),
        ("critical", "critical", 10.0),
        ("Critical", "critical", 10.0),
        ("low", "low", 2.0),
        ("gold", "standard", 5.0),
    ],
)
def test_the_tier_picks_the_cooldown(tier: str | None, expected: str, minutes: float) -> None:
    extra = {"aiops:tier": tier} if tier is not None else {}
    found = tags(None, **extra)
    assert tier_of(found, AutonomySettings())[:2] == (expected, minutes)
    decision = decide_autonomy(incident(), found, [], [], None, AutonomySettings(), T0)
    assert (decision.tier, decision.cooldown_minutes) == (expected, minutes)
    if tier == "critical":
        assert "aiops:tier=critical: cooldown 10 min" in decision.because


@pytest.mark.parametrize(
    ("source", "detail", "says"),
    [
        ("resource", "", "tags read from the resource"),
        ("earlier", "2026-12-01T10:00:00+00:00", "tags recorded at an earlier sighting"),
        ("unreadable", "AccessDeniedException", "tags unreadable (AccessDeniedException)"),
        ("none", "", "no tags: AIOPS_DEFAULT_AUTONOMY=act"),
    ],
)
def test_the_reason_says_where_the_tags_came_from(source: str, detail: str, says: str) -> None:
    found = ResourceTags(tags={}, source=source, detail=detail)  # type: ignore[arg-type]
    decision = decide_autonomy(incident(), found, [], [], None, AutonomySettings(), T0)
    assert says in decision.because


# ---------------------------------------------------------------- the decision in the workflow

OUTCOME = {
    # (autonomy, suppressed) -> where a confident FAILURE with a plan ends up, and whether a
    # notification is sent on the way there
    (A.OFF, True): (WorkflowState.SUPPRESSED, False),
    (A.OFF, False): (WorkflowState.IGNORED, False),
    (A.NOTIFY, False): (WorkflowState.NOTIFIED, True),
    (A.ASK, False): (WorkflowState.AWAITING_APPROVAL, True),
    (A.ACT, False): (WorkflowState.EXECUTING, False),
}
START = PlanStep(action="ec2.start_instances", params={"instance_id": "i-1"})


@pytest.mark.parametrize(("tag", "paused", "frozen", "silenced", "autonomy", "suppressed"), TABLE)
def test_each_row_ends_in_its_state(
    tag: str | None,
    paused: bool,
    frozen: bool,
    silenced: bool,
    autonomy: Autonomy,
    suppressed: bool,
) -> None:
    decision = decide_autonomy(
        incident(),
        tags(tag),
        [silence("resource_id=i-1")] if silenced else [],
        [freeze()] if frozen else [],
        PAUSED if paused else None,
        AutonomySettings(),
        T0,
    )
    analysis = Analysis(
        classification=Classification.FAILURE, confidence=0.95, reasons=("stopped",), plan=(START,)
    )
    inc, _ = decide(incident(), EventReceived(event=incident().event), T0)
    inc, commands = decide(
        inc, Analyzed(command_id="analyze", analysis=analysis, policy=decision), T0
    )
    if inc.workflow_state is WorkflowState.PLANNING:  # the planner said: go ahead
        inc, more = decide(inc, PlanReady(command_id="plan", steps=(START,)), T0)
        commands += more
    state, notifies = OUTCOME[(autonomy, suppressed)]
    assert inc.workflow_state is state
    assert any(c.kind == "notify" for c in commands) is notifies
    assert inc.policy == decision
    assert any(f"policy {autonomy.value}: {decision.because}" in e.detail for e in inc.timeline)


def test_an_anomaly_is_notified_under_ask_and_act_but_not_under_a_silence() -> None:
    anomaly = Analysis(classification=Classification.ANOMALY, confidence=0.9, reasons=("spike",))
    for autonomy, silenced, state in [
        (A.ACT, False, WorkflowState.NOTIFIED),
        (A.ASK, False, WorkflowState.NOTIFIED),
        (A.OFF, True, WorkflowState.SUPPRESSED),
    ]:
        decision = PolicyDecision(
            autonomy=autonomy, because="x", silence_id="sil-1" if silenced else None
        )
        inc, _ = decide(incident(), EventReceived(event=incident().event), T0)
        inc, commands = decide(
            inc, Analyzed(command_id="analyze", analysis=anomaly, policy=decision), T0
        )
        assert inc.workflow_state is state
        assert bool(commands) is not silenced


@pytest.mark.parametrize(
    ("autonomy", "silenced", "state", "notifies"),
    [
        (A.OFF, True, WorkflowState.SUPPRESSED, False),
        (A.OFF, False, WorkflowState.IGNORED, False),
        (A.NOTIFY, False, WorkflowState.NOTIFIED, True),
        (A.ASK, False, WorkflowState.AWAITING_APPROVAL, True),
        (A.ACT, False, WorkflowState.AWAITING_APPROVAL, True),
    ],
)
def test_a_failed_analysis_passes_the_policy_too(
    autonomy: Autonomy, silenced: bool, state: WorkflowState, notifies: bool
) -> None:
    decision = PolicyDecision(
        autonomy=autonomy, because="why", silence_id="sil-1" if silenced else None
    )
    inc, _ = decide(incident(), EventReceived(event=incident().event), T0)
    inc, commands = decide(
        inc, AnalysisFailed(command_id="analyze", error="Timeout", policy=decision), T0
    )
    assert inc.workflow_state is state
    assert any(c.kind == "notify" for c in commands) is notifies
    assert inc.policy == decision
    assert f"analysis failed (Timeout); policy {autonomy.value}: why" in inc.timeline[-1].detail
