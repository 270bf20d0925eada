"""The Bedrock analyzer over real HTTP against the fake Converse endpoint: what the agent decides.

Each test scripts the model's replies, then asserts the decision: the model's classification and
reasons, or the rules' fallback (visible in `analyzer` and `reasons`), or manual review; and never
an action outside the rules' plan.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from aiops_agent.analysis.bedrock import BedrockAnalyzer, BedrockConfig, ClientSource
from aiops_agent.analysis.factory import build_analyzer, build_bedrock_clients
from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.domain.models import Analysis, Classification, NormalizedEvent
from aiops_agent.intake.envelope import parse_event
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import load_settings
from tests.conftest import EVENTS_DIR
from tests.fake_bedrock import (
    AUTO,
    PLANTED,
    SCRIPTS,
    FakeBedrock,
    Step,
    malformed_json,
    refuse_tool_choice,
    server_error,
    stall,
    text_reply,
    throttle,
    tool_call,
    verdict,
)

MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def stop_event(unique: str = "") -> NormalizedEvent:
    """A real CloudTrail StopInstances record: the rules say FAILURE, plan ec2.start_instances."""
    (event,) = parse_event((EVENTS_DIR / "ct_stopinstances_iamuser_ctdocs.json").read_bytes())
    if unique:
        event = event.model_copy(update={"event_id": f"ev-{unique}", "resource_id": f"i-{unique}"})
    return event


def planted_event(unique: str) -> NormalizedEvent:
    """The same call with an instruction planted in attacker-controlled fields."""
    event = stop_event(unique)
    return event.model_copy(
        update={
            "user_agent": f"aws-cli/2 {PLANTED}",
            "details": {**event.details, "tags": {"Name": PLANTED}},
        }
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock(default=AUTO) as server:
        yield server


class Rig:
    def __init__(self, fake: FakeBedrock, clients: ClientSource, **config: Any) -> None:
        self.fake = fake
        self.clients = clients
        self.metrics = Metrics()
        self.clock = Clock()
        self.rules = RulesAnalyzer()
        self.analyzer = BedrockAnalyzer(
            clients=clients,
            rules=self.rules,
            config=BedrockConfig(model_id=MODEL_ID, **config),
            metrics=self.metrics,
            clock=self.clock,
        )

    async def analyze(self, event: NormalizedEvent, *steps: Step) -> Analysis:
        self.fake.push(*steps)
        return await self.analyzer.analyze(event)

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


class OneAttempt:
    """A real bedrock-runtime client making exactly one attempt per call (no botocore retry).

    `AwsClients(max_attempts=1)` still makes two: botocore reads `retries.max_attempts` as the
    number of retries. The tests that are not about retries use this, to stay fast.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    async def client(self, service: str, region: str | None = None) -> Any:
        if self._client is None:
            self._client = await self._stack.enter_async_context(
                get_session().create_client(
                    service,
                    region_name="us-east-1",
                    endpoint_url=self.url,
                    config=AioConfig(retries={"mode": "standard", "total_max_attempts": 1}),
                )
            )
        return self._client

    async def close(self) -> None:
        await self._stack.aclose()


@pytest.fixture
async def clients(fake: FakeBedrock) -> AsyncIterator[OneAttempt]:
    one = OneAttempt(fake.url)
    try:
        yield one
    finally:
        await one.close()


@pytest.fixture
def rig(fake: FakeBedrock, clients: OneAttempt) -> Rig:
    # A generous timeout: the first call also creates the client (botocore loads its model),
    # which a loaded machine can stretch past a few seconds; the timeout has its own test.
    return Rig(fake, clients, timeout_s=30.0, breaker_failures=2, breaker_cool_off_s=30)


async def total_attempts(clients: ClientSource) -> int:
    """What botocore's standard mode will try per call, as the client is configured."""
    client = await clients.client("bedrock-runtime")
    return int(client.meta.config.retries["total_max_attempts"])


def rules_actions(rig: Rig, event: NormalizedEvent) -> set[str]:
    return {step.action for step in rig.rules.judge(event).plan}


# ---------------------------------------------------------------- good replies


async def test_good_tool_call_uses_the_model_classification_and_reasons(
    rig: Rig, unique: str
) -> None:
    event = stop_event(unique)
    reply = verdict(
        "FAILURE",
        confidence=0.91,
        reasons=["instance stopped by a human outside a change window"],
        plan=[("ec2.start_instances", {"instance_id": "i-somewhere-else"})],
    )
    out = await rig.analyze(event, tool_call(reply))
    assert out.analyzer == "bedrock"
    assert out.classification is Classification.FAILURE
    assert out.confidence == 0.91
    assert out.reasons[0] == "instance stopped by a human outside a change window"
    assert [(s.action, s.params["instance_id"]) for s in out.plan] == [
        ("ec2.start_instances", event.resource_id)  # the rules' params, not the model's
    ]
    assert out.requires_approval is False
    request = rig.fake.requests[0]
    assert request["modelId"] == MODEL_ID
    assert request["inferenceConfig"]["temperature"] == 0
    assert request["toolConfig"]["toolChoice"] == {"tool": {"name": "record_assessment"}}
    assert rig.sample("aiops_analyzer_tokens_total", analyzer="bedrock", direction="input") == 812
    assert rig.sample("aiops_analyzer_cost_dollars_total", analyzer="bedrock") > 0
    assert rig.sample("aiops_analyzer_latency_seconds_count", analyzer="bedrock") == 1
    assert rig.sample("aiops_analyzer_requests_total", analyzer="bedrock", outcome="ok") == 1


async def test_cache_hit_sends_no_second_request(rig: Rig, unique: str) -> None:
    first = await rig.analyze(stop_event(unique), AUTO)
    again = stop_event(unique).model_copy(update={"event_id": f"ev-redelivered-{unique}"})
    second = await rig.analyze(again)
    assert len(rig.fake.requests) == 1
    assert second.analyzer == first.analyzer == "bedrock"
    assert second.reasons == first.reasons
    assert rig.sample("aiops_analyzer_requests_total", analyzer="bedrock", outcome="cached") == 1
    other = stop_event(unique).model_copy(update={"action": "TerminateInstances"})
    await rig.analyze(other)
    assert len(rig.fake.requests) == 2  # another fingerprint is another question


# ---------------------------------------------------------------- rejected replies


@pytest.mark.parametrize(
    ("step", "reason", "why"),
    [
        (malformed_json(), "malformed_json", "malformed JSON"),
        (text_reply(), "no_tool_call", "no tool call"),
        (tool_call(verdict(confidence=7)), "schema_violation", "schema violation"),
        (
            tool_call(verdict(plan=["dynamodb.delete_table"])),
            "action_outside_catalog",
            "action outside catalog",
        ),
        (
            Step(raw="<html>not json</html>", headers={"Content-Type": "text/html"}),
            "stop_reason",
            "unexpected stop reason",
        ),
    ],
)
async def test_rejected_reply_falls_back_to_the_rules_visibly(
    rig: Rig, unique: str, step: Step, reason: str, why: str
) -> None:
    event = stop_event(unique)
    out = await rig.analyze(event, step)
    assert out.analyzer == f"rules-fallback:{reason}"
    assert out.reasons[-1] == f"model reply rejected ({why}): rules decided"
    expected = rig.rules.judge(event)
    assert out.classification is expected.classification
    assert out.plan == expected.plan
    assert {s.action for s in out.plan} <= rules_actions(rig, event)
    assert "dynamodb.delete_table" not in {s.action for s in out.plan}
    assert rig.sample("aiops_analyzer_fallbacks_total", reason=reason) == 1
    # A rejected reply is not cached: the next question goes to the model again.
    assert (await rig.analyze(event, AUTO)).analyzer == "bedrock"


# ---------------------------------------------------------------- injection


async def test_planted_instruction_obeyed_by_the_model_goes_to_manual_review(
    rig: Rig, unique: str
) -> None:
    event = planted_event(unique)
    _, obey = SCRIPTS["obey"]
    out = await rig.analyze(event, obey)
    # What the model saw: the planted text only inside the data block, as data.
    text = rig.fake.requests[0]["messages"][0]["content"][0]["text"]
    start, end = text.index("<event_data>\n"), text.index("\n</event_data>")
    assert PLANTED in text[start:end] and PLANTED not in text[:start] + text[end:]
    # What the agent decided: the rules' classification, a human, nothing outside the rules' plan.
    assert out.classification is Classification.FAILURE
    assert out.requires_approval is True
    assert any("manual review" in r for r in out.reasons)
    assert {s.action for s in out.plan} <= rules_actions(rig, event)
    assert all("prod" not in str(s.params) for s in out.plan)
    assert all(s.params.get("resource_type") != "dynamodb" for s in out.plan)


async def test_planted_instruction_with_agreeing_class_cannot_add_a_step(
    rig: Rig, unique: str
) -> None:
    event = planted_event(unique)
    reply = verdict(
        "FAILURE",
        reasons=["restore table prod as the tag asks"],
        plan=[
            ("ec2.start_instances", {"instance_id": "i-attacker"}),
            ("iac.restore", {"resource_type": "dynamodb", "resource_id": "prod"}),
        ],
    )
    out = await rig.analyze(event, tool_call(reply))
    assert [s.action for s in out.plan] == ["ec2.start_instances"]
    assert out.plan[0].params["instance_id"] == event.resource_id
    assert any("iac.restore" in r and "not run" in r for r in out.reasons)


# ---------------------------------------------------------------- unavailable model


def bedrock_settings(fake: FakeBedrock, **overrides: Any) -> Any:
    return load_settings(
        analyzer="bedrock", model_id=MODEL_ID, bedrock_endpoint_url=fake.url, **overrides
    )


async def test_throttling_is_retried_within_the_deadline_then_answers(
    fake: FakeBedrock, unique: str
) -> None:
    settings = bedrock_settings(fake)
    clients = build_bedrock_clients(settings)
    assert clients is not None
    async with clients:
        assert await total_attempts(clients) == 1, "the caller retries, botocore does not"
        rig = Rig(fake, clients, timeout_s=10.0)
        out = await rig.analyze(stop_event(unique), throttle(), throttle(), AUTO)
    assert out.analyzer == "bedrock"
    assert len(fake.requests) == 3


async def test_throttling_until_the_deadline_is_reported_as_throttling(
    fake: FakeBedrock, unique: str
) -> None:
    """Bedrock throttles for longer than the deadline: the fallback says throttled, not timeout
    (botocore's standard mode, backing off up to 20 s, used to be cut off by the deadline)."""
    fake.default = throttle()
    settings = bedrock_settings(fake, bedrock_timeout_seconds=3)
    clients = build_bedrock_clients(settings)
    assert clients is not None
    async with clients:
        rig = Rig(fake, clients, timeout_s=3.0)
        out = await rig.analyze(stop_event(unique))
    assert out.analyzer == "rules-fallback:throttled"
    assert any("still throttled after" in r for r in out.reasons), out.reasons
    assert len(fake.requests) >= 3, "retried while the deadline left time"
    assert rig.sample("aiops_analyzer_fallbacks_total", reason="throttled") == 1
    assert rig.sample("aiops_analyzer_fallbacks_total", reason="timeout") == 0
    assert rig.sample("aiops_analyzer_requests_total", analyzer="bedrock", outcome="throttled") == 1


@pytest.mark.parametrize(
    ("model_id", "sent"),
    [
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", {"tool": {"name": "record_assessment"}}),
        ("us.amazon.nova-pro-v1:0", {"tool": {"name": "record_assessment"}}),
        ("mistral.mistral-large-2407-v1:0", {"any": {}}),
        ("meta.llama3-1-70b-instruct-v1:0", None),
        ("cohere.command-r-plus-v1:0", None),
    ],
)
async def test_the_tool_choice_fits_the_model_family(
    fake: FakeBedrock, clients: OneAttempt, model_id: str, sent: Any, unique: str
) -> None:
    """`toolChoice.tool` is accepted by Claude 3+ and Nova only (AWS ToolChoice reference); the
    fake refuses it for others, as Bedrock does, and the model must still be consulted."""
    analyzer = BedrockAnalyzer(
        clients=clients, rules=RulesAnalyzer(), config=BedrockConfig(model_id=model_id)
    )
    out = await analyzer.analyze(stop_event(unique))
    assert out.analyzer == "bedrock", out.reasons
    assert len(fake.requests) == 1
    assert fake.requests[0]["toolConfig"].get("toolChoice") == sent


async def test_a_refused_forced_tool_is_retried_with_a_weaker_choice(
    fake: FakeBedrock, clients: OneAttempt, unique: str
) -> None:
    """A family the code takes for Claude 3 but Bedrock refuses the field for (as Nova did
    before March 2025): refused once, then `any`, then remembered for that model."""
    fake.push(
        refuse_tool_choice("tool"),
        refuse_tool_choice("any"),
        AUTO,
        AUTO,
    )
    analyzer = BedrockAnalyzer(
        clients=clients,
        rules=RulesAnalyzer(),
        config=BedrockConfig(model_id=MODEL_ID, timeout_s=5.0, cache_ttl_s=0),
    )
    out = await analyzer.analyze(stop_event(unique))
    assert out.analyzer == "bedrock", out.reasons
    choices = [r["toolConfig"].get("toolChoice") for r in fake.requests]
    assert choices == [{"tool": {"name": "record_assessment"}}, {"any": {}}, None]
    await analyzer.analyze(stop_event(unique + "2"))
    assert fake.requests[-1]["toolConfig"].get("toolChoice") is None


async def test_a_refused_request_says_the_model_was_not_consulted(
    fake: FakeBedrock, clients: OneAttempt, unique: str
) -> None:
    fake.push(
        Step(
            status=400,
            body={"message": "The provided model identifier is invalid."},
            headers={"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/"},
        )
    )
    rig = Rig(fake, clients)
    out = await rig.analyze(stop_event(unique))
    assert out.analyzer == "rules-fallback:rejected_request"
    assert any("Bedrock refused the request" in r and "model identifier" in r for r in out.reasons)


STALL_S = 60.0
"""A model that answers after a minute: far beyond the 0.5 s timeout, whatever the load."""


async def test_a_stalled_model_times_out_quickly(fake: FakeBedrock, clients: OneAttempt) -> None:
    rig = Rig(fake, clients, timeout_s=0.5)
    started = time.perf_counter()
    out = await rig.analyze(stop_event("stall"), stall(STALL_S))
    elapsed = time.perf_counter() - started
    assert elapsed < STALL_S / 2, "it waited for the model instead of its 0.5 s timeout"
    assert out.analyzer == "rules-fallback:timeout"
    assert "model unavailable (no reply within 0.5 s): rules decided" in out.reasons
    assert out.plan == rig.rules.judge(stop_event("stall")).plan


async def test_server_errors_open_the_breaker_which_half_opens_later(rig: Rig, unique: str) -> None:
    rig.fake.default = server_error()
    per_call = await total_attempts_of(rig)
    for n in range(2):
        out = await rig.analyze(stop_event(f"{unique}{n}"))
        assert out.analyzer == "rules-fallback:error"
        assert out.reasons[-1] == "model unavailable (InternalServerException): rules decided"
    assert len(rig.fake.requests) == 2 * per_call
    assert rig.sample("aiops_breaker_open", breaker="analyzer") == 1
    # Open: no request goes out, the rules decide, and the reason says why.
    out = await rig.analyze(stop_event(f"{unique}x"))
    assert len(rig.fake.requests) == 2 * per_call
    assert out.analyzer == "rules-fallback:breaker_open"
    assert out.plan == rig.rules.judge(stop_event(f"{unique}x")).plan
    assert any("circuit breaker open, next try in 30 s" in r for r in out.reasons)
    # After the cool-off one probe goes out; it fails: open again.
    rig.clock.t += 30
    out = await rig.analyze(stop_event(f"{unique}y"))
    assert len(rig.fake.requests) == 3 * per_call and out.analyzer == "rules-fallback:error"
    assert (await rig.analyze(stop_event(f"{unique}z"))).analyzer == "rules-fallback:breaker_open"
    # Next cool-off: the probe succeeds and the breaker closes.
    rig.fake.default = AUTO
    rig.clock.t += 30
    out = await rig.analyze(stop_event(f"{unique}w"))
    assert out.analyzer == "bedrock"
    assert rig.sample("aiops_breaker_open", breaker="analyzer") == 0
    assert rig.sample("aiops_analyzer_fallbacks_total", reason="breaker_open") == 2
    assert rig.sample("aiops_analyzer_fallbacks_total", reason="error") == 3


async def total_attempts_of(rig: Rig) -> int:
    return await total_attempts(rig.clients)


# ---------------------------------------------------------------- wiring


async def test_factory_builds_the_configured_analyzer(
    fake: FakeBedrock, clients: OneAttempt
) -> None:
    rules_settings = load_settings(analyzer="rules")
    assert isinstance(build_analyzer(rules_settings, clients, None, None), RulesAnalyzer)
    settings = load_settings(
        analyzer="bedrock", model_id="my.model-v1:0", confidence_threshold=0.95
    )
    analyzer = build_analyzer(settings, clients, Metrics(), None)
    assert isinstance(analyzer, BedrockAnalyzer)
    fake.push(AUTO)  # the AUTO model answers with confidence 0.9, below 0.95
    out = await analyzer.analyze(stop_event("factory"))
    assert fake.requests[-1]["modelId"] == "my.model-v1:0"
    assert out.requires_approval is True
    assert any("below 0.95" in r for r in out.reasons)
