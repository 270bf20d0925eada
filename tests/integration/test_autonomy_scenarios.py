"""Who decides, against moto behind the test proxy: tags, silences, the pause, freezes, tiers.

Every replica here is a full set of components (`build_components`) on the same tables; the
proxy counts what reached the emulator (StartInstances, Publish) and answers what moto lacks
(ssm:GetCalendarState).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiops_agent.app import Components, build_components
from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.autonomy import Freeze, Matcher, Silence
from aiops_agent.domain.messages import Approved
from aiops_agent.domain.models import Incident, WorkflowState
from aiops_agent.intake.envelope import parse_event
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings
from aiops_agent.store.tables import ensure_tables
from tests.aws_proxy import AwsProxy
from tests.aws_rules import Exchange, Proceed, Reply, Rule, op_set

S = WorkflowState
AMI = "ami-12c6146b"


class Ticks:
    """A replica's monotonic clock for its caches, moved by the test."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Serve(Rule):
    """Answers a call moto does not implement (ssm:GetCalendarState) with a fixed JSON body."""

    def __init__(self, operation: str, body: dict[str, Any]) -> None:
        self.operations = op_set(operation)
        self.body = body

    async def apply(self, ex: Exchange, proceed: Proceed) -> Reply:
        ex.outcome = "served"
        return Reply.of_json(self.body)


@dataclass
class Replica:
    parts: Components
    metrics: Metrics
    aws: AwsClients
    ticks: Ticks

    async def handle(self, body: dict[str, Any]) -> Incident:
        (event,) = parse_event(json.dumps(body))
        incident = await self.parts.engine.handle_event(event)
        assert incident is not None
        return incident

    def gauge(self, name: str) -> float:
        for family in self.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
        raise AssertionError(f"no metric {name}")


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[AwsProxy]:
    async with AwsProxy(moto_endpoint) as running:
        yield running


@pytest.fixture
async def topic(proxy: AwsProxy, unique: str) -> str:
    async with AwsClients(endpoint_url=proxy.url, max_attempts=1) as aws:
        sns = await aws.client("sns")
        return str((await sns.create_topic(Name=f"aiops-{unique}"))["TopicArn"])


@pytest.fixture
async def make_replica(proxy: AwsProxy, topic: str, unique: str) -> AsyncIterator[Any]:
    opened: list[AwsClients] = []

    async def make(analyzer: Any = None, **overrides: Any) -> Replica:
        settings = Settings(
            aws_endpoint_url=proxy.url,
            incident_table=f"inc-{unique}",
            patterns_table=f"pat-{unique}",
            sns_topic_arn=topic,
            verify_interval_seconds=0.2,
            aws_max_attempts=1,
            # State changes with no CloudTrail record to follow: act at once.
            **{"attribution_grace_seconds": 0, **overrides},
        )
        metrics = Metrics()
        clients = AwsClients(endpoint_url=proxy.url, max_attempts=1, on_call=metrics.on_aws_call)
        opened.append(clients)
        await ensure_tables(clients, settings.incident_table, settings.patterns_table)
        ticks = Ticks()
        parts = build_components(settings, clients, metrics, monotonic=ticks, analyzer=analyzer)
        return Replica(parts, metrics, clients, ticks)

    yield make
    for clients in opened:
        await clients.close()


def stopped(instance_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"ev-{uuid.uuid4().hex[:12]}",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "time": datetime.now(UTC).isoformat(),
        "region": "us-east-1",
        "resources": [],
        "detail": {"instance-id": instance_id, "state": "stopped"},
    }


async def stopped_instance(aws: AwsClients, **tags: str) -> str:
    ec2 = await aws.client("ec2")
    spec = (
        [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        if tags
        else []
    )
    got = await ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, TagSpecifications=spec)
    instance_id = str(got["Instances"][0]["InstanceId"])
    await ec2.stop_instances(InstanceIds=[instance_id])
    return instance_id


async def state_of(aws: AwsClients, instance_id: str) -> str:
    ec2 = await aws.client("ec2")
    got = await ec2.describe_instances(InstanceIds=[instance_id])
    return str(got["Reservations"][0]["Instances"][0]["State"]["Name"])


def started(proxy: AwsProxy) -> list[str]:
    return [c.params.get("InstanceId.1", "") for c in proxy.select("StartInstances")]


def published_about(proxy: AwsProxy, resource_id: str) -> int:
    return sum(resource_id in c.params.get("Subject", "") for c in proxy.select("Publish"))


def timeline(incident: Incident) -> str:
    return "\n".join(e.detail for e in incident.timeline)


async def test_four_instances_tagged_off_notify_ask_act(make_replica: Any, proxy: AwsProxy) -> None:
    replica: Replica = await make_replica()
    ids = {
        level: await stopped_instance(replica.aws, **{"aiops:autonomy": level})
        for level in ("off", "notify", "ask", "act")
    }
    got = {level: await replica.handle(stopped(i)) for level, i in ids.items()}

    assert {k: v.workflow_state for k, v in got.items()} == {
        "off": S.IGNORED,
        "notify": S.NOTIFIED,
        "ask": S.AWAITING_APPROVAL,
        "act": S.COMPLETED,
    }
    assert started(proxy) == [ids["act"]]  # StartInstances ran once, on the act one
    # What deciding cost: one tag read per incident, one read of the control state for all
    # four (the copy is fresh for AIOPS_CONTROL_REFRESH_SECONDS).
    assert proxy.count("GetResources") == 4
    control_reads = [
        c
        for c in proxy.select("Query")
        if c.params.get("ExpressionAttributeValues", {}).get(":pk") == {"S": "control"}
    ]
    assert len(control_reads) == 1
    for level, incident in got.items():
        public = incident.to_public()
        assert public["policy"]["autonomy"] == level
        assert (
            f"aiops:autonomy={level} (tags read from the resource)" in public["policy"]["because"]
        )
        assert f"policy {level}: aiops:autonomy={level}" in timeline(incident)
        assert incident.tags == {"aiops:autonomy": level}
    assert published_about(proxy, ids["off"]) == 0  # off: no notification
    assert published_about(proxy, ids["notify"]) == 1
    assert "notify only, no action" in timeline(got["notify"])
    assert "needs approval (policy ask: aiops:autonomy=ask" in timeline(got["ask"])
    assert await state_of(replica.aws, ids["ask"]) == "stopped"

    # The person says yes: the ask one acts (once).
    await replica.parts.engine.answer_review(got["ask"].incident_id, Approved(by="oncall"))
    resumed = await replica.parts.engine.resume(got["ask"].incident_id)
    assert resumed is not None and resumed.workflow_state is S.COMPLETED, timeline(resumed)
    assert started(proxy) == [ids["act"], ids["ask"]]
    assert replica.gauge("aiops_policy_decisions_total") >= 0  # the family exists
    decisions = {
        s.labels["outcome"]: s.value
        for f in replica.metrics.registry.collect()
        if f.name == "aiops_policy_decisions"
        for s in f.samples
        if s.name.endswith("_total")
    }
    assert decisions == {"silenced": 0, "off": 1, "notify": 1, "ask": 1, "act": 1}


async def test_a_silence_leaves_its_resource_alone_and_no_other(
    make_replica: Any, proxy: AwsProxy
) -> None:
    replica: Replica = await make_replica()
    silenced = await stopped_instance(replica.aws, team="payments")
    other = await stopped_instance(replica.aws, team="search")
    now = datetime.now(UTC)
    await replica.parts.control.add_silence(
        Silence(
            silence_id="sil-pay",
            matchers=(Matcher.parse("resource_type=ec2"), Matcher.parse("tag:team=pay*")),
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=2),
            author="alice",
            reason="payments migration",
            created_at=now,
        )
    )
    quiet = await replica.handle(stopped(silenced))
    loud = await replica.handle(stopped(other))

    assert quiet.workflow_state is S.SUPPRESSED, timeline(quiet)
    assert await state_of(replica.aws, silenced) == "stopped"
    assert published_about(proxy, silenced) == 0
    assert quiet.to_public()["policy"]["silence_id"] == "sil-pay"
    assert "silence sil-pay (resource_type=ec2 tag:team=pay*)" in timeline(quiet)
    assert "alice: payments migration" in timeline(quiet)

    assert loud.workflow_state is S.COMPLETED, timeline(loud)
    assert started(proxy) == [other]
    assert replica.gauge("aiops_silences_active") == 1


async def test_pause_on_one_replica_stops_another_and_resume_lets_it_act(
    make_replica: Any, proxy: AwsProxy
) -> None:
    one: Replica = await make_replica()
    two: Replica = await make_replica()
    refresh = two.parts.settings.control_refresh_seconds
    assert refresh <= 30
    first = await two.handle(stopped(await stopped_instance(two.aws)))
    assert first.workflow_state is S.COMPLETED  # `two` has read the state: not paused

    await one.parts.control.pause("carol", "bad deploy in progress", datetime.now(UTC))
    two.ticks.t += refresh  # `two`'s copy is now as old as it may get
    held_id = await stopped_instance(two.aws)
    held = await two.handle(stopped(held_id))
    assert held.workflow_state is S.AWAITING_APPROVAL, timeline(held)
    assert held.to_public()["policy"]["autonomy"] == "ask"
    assert "paused by carol" in timeline(held) and "act becomes ask" in timeline(held)
    assert held_id not in started(proxy)
    assert two.gauge("aiops_paused") == 1

    await one.parts.control.resume("carol", datetime.now(UTC))
    two.ticks.t += refresh
    free_id = await stopped_instance(two.aws)
    free = await two.handle(stopped(free_id))
    assert free.workflow_state is S.COMPLETED, timeline(free)
    assert free_id in started(proxy) and held_id not in started(proxy)
    assert two.gauge("aiops_paused") == 0


async def test_a_pause_after_the_decision_still_stops_the_action(
    make_replica: Any, proxy: AwsProxy
) -> None:
    """Decided `act`, then waiting for the change's author: the pause is checked again."""
    replica: Replica = await make_replica(attribution_grace_seconds=600)
    instance_id = await stopped_instance(replica.aws)
    waiting = await replica.handle(stopped(instance_id))
    assert waiting.workflow_state is S.PLANNING and waiting.next_check_at is not None
    await replica.parts.control.pause("dave", "incident bridge open", datetime.now(UTC))
    replica.ticks.t += replica.parts.settings.control_refresh_seconds
    # The wait is over (as if 10 minutes had passed): the planner runs again.
    past = datetime.now(UTC) - timedelta(minutes=10)
    late = waiting.model_copy(
        update={
            "event": waiting.event.model_copy(update={"time": past}),
            "next_check_at": datetime.now(UTC),
        }
    )
    saved = await replica.parts.store.save(late)
    resumed = await replica.parts.engine.resume(saved.incident_id)
    assert resumed is not None and resumed.workflow_state is S.AWAITING_APPROVAL
    assert "escalated: paused by dave" in timeline(resumed)
    assert instance_id not in started(proxy)


async def test_a_freeze_turns_act_into_ask_and_says_so(make_replica: Any, proxy: AwsProxy) -> None:
    replica: Replica = await make_replica()
    now = datetime.now(UTC)
    await replica.parts.control.add_freeze(
        Freeze(
            freeze_id="frz-bf",
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=1),
            author="bob",
            reason="black friday",
            created_at=now,
        )
    )
    instance_id = await stopped_instance(replica.aws, **{"aiops:autonomy": "act"})
    frozen = await replica.handle(stopped(instance_id))
    assert frozen.workflow_state is S.AWAITING_APPROVAL, timeline(frozen)
    assert frozen.to_public()["policy"]["autonomy"] == "ask"
    assert "freeze frz-bf" in timeline(frozen) and "act becomes ask" in timeline(frozen)
    assert "bob: black friday" in timeline(frozen)
    assert started(proxy) == []
    assert replica.gauge("aiops_freezes_active") == 1


async def test_a_closed_change_calendar_is_a_freeze(make_replica: Any, proxy: AwsProxy) -> None:
    replica: Replica = await make_replica(change_calendars=["prod-changes"])
    closed = proxy.add(
        Serve(
            "GetCalendarState",
            {"State": "CLOSED", "AtTime": "2026-12-03T12:00:00Z", "NextTransitionTime": ""},
        ),
        first=True,
    )
    frozen = await replica.handle(stopped(await stopped_instance(replica.aws)))
    assert frozen.workflow_state is S.AWAITING_APPROVAL, timeline(frozen)
    assert "change calendar prod-changes is CLOSED" in timeline(frozen)
    asked = proxy.select("GetCalendarState", outcome="served")
    assert [c.params["CalendarNames"] for c in asked] == [["prod-changes"]]

    proxy.remove(closed)
    proxy.add(Serve("GetCalendarState", {"State": "OPEN", "AtTime": "2026-12-03T12:00:00Z"}))
    replica.ticks.t += replica.parts.settings.control_refresh_seconds
    free = await replica.handle(stopped(await stopped_instance(replica.aws)))
    assert free.workflow_state is S.COMPLETED, timeline(free)


async def test_a_critical_resource_gets_its_own_cooldown(make_replica: Any) -> None:
    replica: Replica = await make_replica()  # critical=10, standard=5 (the defaults)
    critical = await stopped_instance(replica.aws, **{"aiops:tier": "critical"})
    standard = await stopped_instance(replica.aws)
    ec2 = await replica.aws.client("ec2")
    waits = {}
    for name, instance_id in (("critical", critical), ("standard", standard)):
        first = await replica.handle(stopped(instance_id))
        assert first.workflow_state is S.COMPLETED
        await ec2.stop_instances(InstanceIds=[instance_id])
        again = await replica.handle(stopped(instance_id))
        assert again.workflow_state is S.PLANNING and again.next_check_at is not None
        waits[name] = again.next_check_at - first.updated_at
        assert f"tier {name}" in timeline(again)
        assert again.to_public()["policy"]["tier"] == name
    assert waits == {"critical": timedelta(minutes=10), "standard": timedelta(minutes=5)}
    recorded = await replica.parts.store.get(
        (await replica.parts.store.latest_for_resource(f"ec2:us-east-1:{critical}", 1))[
            0
        ].incident_id
    )
    assert recorded is not None and "aiops:tier=critical: cooldown 10 min" in timeline(recorded)


async def test_unreadable_tags_are_untagged_and_the_timeline_says_so(
    make_replica: Any, proxy: AwsProxy
) -> None:
    replica: Replica = await make_replica()
    instance_id = await stopped_instance(replica.aws, **{"aiops:autonomy": "off"})
    proxy.fail("GetResources", error="access_denied")
    incident = await replica.handle(stopped(instance_id))
    assert incident.workflow_state is S.COMPLETED  # untagged: AIOPS_DEFAULT_AUTONOMY=act
    assert "tags unreadable (AccessDeniedException): treated as untagged" in timeline(incident)


def parameter_call(name: str, call: str, unique: str, version: int = 2) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    event_id = f"ct-{call}-{uuid.uuid4().hex[:8]}"
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ssm",
        "time": now,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventSource": "ssm.amazonaws.com",
            "eventName": call,
            "eventTime": now,
            "awsRegion": "us-east-1",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/eve"},
            "requestParameters": {"name": name, "type": "String", "overwrite": True},
            "responseElements": {"version": version, "tier": "Standard"}
            if call == "PutParameter"
            else None,
            "eventID": event_id,
        },
    }


async def test_a_deleted_resource_keeps_the_tags_of_an_earlier_sighting(
    make_replica: Any, unique: str
) -> None:
    replica: Replica = await make_replica(tags_cache_seconds=0)
    ssm = await replica.aws.client("ssm")
    name = f"/app/{unique}/db-host"
    await ssm.put_parameter(Name=name, Value="db.internal:5432", Type="String")
    await ssm.add_tags_to_resource(
        ResourceType="Parameter",
        ResourceId=name,
        Tags=[{"Key": "aiops:autonomy", "Value": "notify"}],
    )
    await ssm.put_parameter(Name=name, Value="evil.example:5432", Type="String", Overwrite=True)
    tampered = await replica.handle(parameter_call(name, "PutParameter", unique))
    assert tampered.workflow_state is S.NOTIFIED
    assert "tags read from the resource" in timeline(tampered)

    await ssm.delete_parameter(Name=name)
    deleted = await replica.handle(parameter_call(name, "DeleteParameter", unique))
    assert deleted.incident_id != tampered.incident_id
    assert deleted.workflow_state is S.NOTIFIED, timeline(deleted)
    assert "tags recorded at an earlier sighting" in timeline(deleted)
    assert "the resource is not found now" in timeline(deleted)


class BrokenAnalyzer:
    name = "broken"

    async def analyze(self, event: Any) -> Any:
        raise TimeoutError("the model did not answer")


async def test_a_silence_keeps_even_a_failed_analysis_quiet(
    make_replica: Any, proxy: AwsProxy
) -> None:
    replica: Replica = await make_replica(analyzer=BrokenAnalyzer())
    quiet_id = await stopped_instance(replica.aws, team="payments")
    loud_id = await stopped_instance(replica.aws, team="search")
    now = datetime.now(UTC)
    await replica.parts.control.add_silence(
        Silence(
            silence_id="sil-quiet",
            matchers=(Matcher.parse("tag:team=payments"),),
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=1),
            author="alice",
            reason="maintenance",
            created_at=now,
        )
    )
    quiet = await replica.handle(stopped(quiet_id))
    loud = await replica.handle(stopped(loud_id))
    assert quiet.workflow_state is S.SUPPRESSED, timeline(quiet)
    assert "analysis failed (TimeoutError" in timeline(quiet)
    assert published_about(proxy, quiet_id) == 0
    assert loud.workflow_state is S.AWAITING_APPROVAL, timeline(loud)
    assert published_about(proxy, loud_id) == 1
