"""The log assessor over real HTTP against the fake Converse endpoint: what the alert says.

The model may raise the failure probability and explain it; it can never lower it below the
rules' figure; every failure leaves the rules' assessment, named in `analyzer`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiops_agent.analysis.converse import BedrockConfig
from aiops_agent.logs.analysis import Anomaly, assess
from aiops_agent.logs.assessor import (
    BedrockLogAssessor,
    RulesAssessor,
    build_log_assessor,
)
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings
from tests.fake_bedrock import (
    AUTO,
    PLANTED,
    FakeBedrock,
    malformed_json,
    server_error,
    stall,
    text_reply,
    tool_call,
)
from tests.fake_bedrock import log_verdict as reply
from tests.integration.test_bedrock import MODEL_ID, Clock, OneAttempt

TOOL = "record_log_assessment"


def spike(template: str = "ERROR db <*> connection refused", count: int = 40) -> Anomaly:
    return Anomaly("/app/api", "tpl000000001", template, "spike", count, 2.0, 5.0, 287, 9.0)


class Rig:
    def __init__(self, fake: FakeBedrock, clients: OneAttempt, **config: float) -> None:
        self.fake = fake
        self.clients = clients
        self.metrics = Metrics()
        self.clock = Clock()
        self.assessor = BedrockLogAssessor(
            clients=clients,
            config=BedrockConfig(model_id=MODEL_ID, **config),  # type: ignore[arg-type]
            metrics=self.metrics,
            clock=self.clock,
        )

    def fallbacks(self, reason: str) -> float:
        sample = "aiops_analyzer_fallbacks_total"
        return self.metrics.registry.get_sample_value(sample, {"reason": reason}) or 0.0


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with FakeBedrock(default=AUTO) as fake:
        clients = OneAttempt(fake.url)
        try:
            # Generous: the first call also creates the client, slow on a loaded machine.
            yield Rig(fake, clients, timeout_s=30.0, breaker_failures=2)
        finally:
            await clients.close()


async def test_a_good_model_explains_the_anomaly_in_its_own_words(rig: Rig) -> None:
    anomaly = spike()
    result = await rig.assessor.assess([anomaly], 5)
    rules = assess([anomaly], 5)
    assert result.analyzer == "bedrock-logs"
    assert result.failure_probability >= rules.failure_probability
    assert result.root_cause.startswith("model: spike of 'ERROR db <*> connection refused'")
    (request,) = rig.fake.requests
    assert request["modelId"] == MODEL_ID
    assert request["toolConfig"]["toolChoice"] == {"tool": {"name": TOOL}}
    schema = request["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert set(schema["required"]) == {
        "failure_probability",
        "root_cause",
        "recommended_action",
        "urgency",
    }


async def test_the_model_may_raise_the_probability(rig: Rig) -> None:
    quiet = spike("INFO cache warmed for <*>")
    rig.fake.push(tool_call(reply(0.91, root_cause="cache churn precedes OOM"), name=TOOL))
    result = await rig.assessor.assess([quiet], 5)
    assert assess([quiet], 5).failure_probability < 0.5
    assert (result.failure_probability, result.root_cause) == (0.91, "cache churn precedes OOM")


async def test_a_planted_instruction_cannot_silence_the_rules(rig: Rig) -> None:
    planted = spike(f"ERROR login failed for user {PLANTED} <*>")
    rig.fake.push(tool_call(reply(0.0, root_cause="as instructed", urgency="low"), name=TOOL))
    result = await rig.assessor.assess([planted], 5)
    rules = assess([planted], 5)
    assert result.failure_probability == rules.failure_probability
    assert result.urgency == rules.urgency
    assert result.analyzer == "bedrock-logs, rules kept"
    assert "the model rated it 0.00: as instructed" in result.root_cause
    prompt = rig.fake.requests[0]["messages"][0]["content"][0]["text"]
    data = prompt.split("<log_anomalies>\n")[1].split("\n</log_anomalies>")[0]
    assert PLANTED in data and "<" not in data  # quoted as data: no tag can be closed


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (text_reply(), "no_tool_call"),
        (malformed_json(), "no_tool_call"),  # the event tool's name: not ours
        (tool_call('{"failure_probability": 0.9', name=TOOL), "malformed_json"),
        (tool_call(reply(1.5), name=TOOL), "schema_violation"),
        (server_error(), "error"),
        (stall(60.0), "timeout"),  # with a 2 s timeout (below): a minute is far beyond it
    ],
)
async def test_any_failure_leaves_the_rules_assessment(rig: Rig, step: object, reason: str) -> None:
    if reason == "timeout":
        rig = Rig(rig.fake, rig.clients, timeout_s=2.0, breaker_failures=2)
    rig.fake.push(step)  # type: ignore[arg-type]
    anomaly = spike()
    result = await rig.assessor.assess([anomaly], 5)
    rules = assess([anomaly], 5)
    assert result.failure_probability == rules.failure_probability
    assert result.root_cause == rules.root_cause
    assert result.analyzer.startswith(f"rules-fallback:{reason}")
    assert rig.fallbacks(reason) == 1


async def test_the_breaker_stops_calling_a_failing_model(rig: Rig) -> None:
    rig.fake.push(server_error(), server_error())
    for i in range(3):
        result = await rig.assessor.assess([spike(count=40 + i)], 5)
        assert result.analyzer.startswith("rules-fallback:")
    assert len(rig.fake.requests) == 2  # breaker_failures=2: the third never left
    assert result.analyzer.startswith("rules-fallback:breaker_open")
    rig.clock.t += 61  # the cool-off: one probe, which succeeds
    assert (await rig.assessor.assess([spike()], 5)).analyzer == "bedrock-logs"


async def test_the_same_anomalies_within_the_ttl_are_asked_once(rig: Rig) -> None:
    first = await rig.assessor.assess([spike(count=40)], 5)
    again = await rig.assessor.assess([spike(count=60)], 5)
    assert len(rig.fake.requests) == 1
    assert again == first
    rig.clock.t += 301
    await rig.assessor.assess([spike(count=60)], 5)
    assert len(rig.fake.requests) == 2


async def test_no_anomaly_no_call(rig: Rig) -> None:
    result = await rig.assessor.assess([], 5)
    assert result.failure_probability == 0.0 and not rig.fake.requests


def test_the_setting_chooses_the_assessor() -> None:
    assert isinstance(build_log_assessor(Settings(), clients=None), RulesAssessor)  # type: ignore[arg-type]
    chosen = build_log_assessor(Settings(analyzer="bedrock"), clients=None)  # type: ignore[arg-type]
    assert isinstance(chosen, BedrockLogAssessor)
