"""The Bedrock analyzer's output through the workflow: the model's reasons and every fallback on
the incident's timeline, past incidents in the prompt. Also the fake endpoint as a standalone
process, the way the demo runs it.

The workflow here is the pure state machine (`decide`) fed with what the analyzer returned, the
same two calls the engine makes around `Analyze`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiops_agent.analysis.bedrock import BedrockAnalyzer, BedrockConfig
from aiops_agent.analysis.history import IncidentHistory
from aiops_agent.analysis.rules import RulesAnalyzer
from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.machine import Policy, decide
from aiops_agent.domain.messages import Analyzed, EventReceived
from aiops_agent.domain.models import (
    ActionRecord,
    Incident,
    NormalizedEvent,
    Verification,
    WorkflowState,
    incident_id_for,
)
from aiops_agent.store.memory import MemoryIncidentStore
from tests.fake_bedrock import AUTO, SCRIPTS, FakeBedrock, malformed_json
from tests.integration.test_bedrock import MODEL_ID, planted_event, stop_event

S = WorkflowState
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def new_incident(event: NormalizedEvent) -> Incident:
    return Incident(
        incident_id=incident_id_for(event.event_id, event.resource_key),
        event_id=event.event_id,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        region=event.region,
        resource_key=event.resource_key,
        event=event,
        created_at=NOW,
        updated_at=NOW,
    )


async def analyzed(analyzer: BedrockAnalyzer, event: NormalizedEvent) -> Incident:
    """EventReceived, then the analyzer's answer to the Analyze command, through `decide`."""
    policy = Policy(confidence_threshold=0.8)
    incident, commands = decide(new_incident(event), EventReceived(event=event), NOW, policy)
    (analyze,) = commands
    analysis = await analyzer.analyze(event)
    incident, _ = decide(incident, Analyzed(command_id=analyze.id, analysis=analysis), NOW, policy)
    return incident


def timeline(incident: Incident) -> str:
    return "\n".join(entry.detail for entry in incident.timeline)


def completed(event: NormalizedEvent, *, passed: bool) -> Incident:
    return new_incident(event).model_copy(
        update={
            "workflow_state": S.COMPLETED if passed else S.FAILED,
            "recovery_actions": (
                ActionRecord(
                    step=0, action="ec2.start_instances", status="SUCCEEDED", started_at=NOW
                ),
            ),
            "verification": Verification(status="PASSED" if passed else "FAILED"),
        }
    )


async def test_model_reasons_and_fallbacks_reach_the_timeline(unique: str) -> None:
    store = MemoryIncidentStore()
    past = stop_event(f"past{unique}")
    assert await store.create(completed(past, passed=False))
    async with (
        FakeBedrock([AUTO, malformed_json()]) as fake,
        AwsClients(endpoint_url=fake.url, max_attempts=1) as clients,
    ):
        analyzer = BedrockAnalyzer(
            clients=clients,
            rules=RulesAnalyzer(),
            config=BedrockConfig(model_id=MODEL_ID),
            history=IncidentHistory(store),
        )
        first = await analyzed(analyzer, stop_event(f"a{unique}"))
        second = await analyzed(analyzer, stop_event(f"b{unique}"))
    assert first.workflow_state is S.PLANNING
    assert f"FAILURE (0.90, bedrock): model: StopInstances on ec2 i-a{unique}" in timeline(first)
    assert second.workflow_state is S.PLANNING  # the rules decided: same plan, same path
    assert "(0.90, rules-fallback:malformed_json)" in timeline(second)
    assert "model reply rejected (malformed JSON): rules decided" in timeline(second)
    # The past incident of this resource type went to the model, with its failed verification.
    prompt = fake.requests[0]["messages"][0]["content"][0]["text"]
    assert f"i-past{unique}" in prompt and '"verification": "FAILED"' in prompt


async def test_obeyed_injection_waits_for_a_human(unique: str) -> None:
    _, obey = SCRIPTS["obey"]
    async with (
        FakeBedrock([obey]) as fake,
        AwsClients(endpoint_url=fake.url, max_attempts=1) as clients,
    ):
        analyzer = BedrockAnalyzer(
            clients=clients, rules=RulesAnalyzer(), config=BedrockConfig(model_id=MODEL_ID)
        )
        incident = await analyzed(analyzer, planted_event(unique))
    assert incident.classification is not None and incident.classification.value == "FAILURE"
    assert incident.approval_required is True
    assert [s.action for s in incident.plan] == ["ec2.start_instances"]
    assert "rules' classification kept, manual review" in timeline(incident)


async def test_standalone_fake_serves_the_obey_script() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fake_bedrock",
        "--port",
        "0",
        "--script",
        "obey",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("fake-bedrock listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        async with AwsClients(endpoint_url=url, max_attempts=1) as clients:
            analyzer = BedrockAnalyzer(
                clients=clients, rules=RulesAnalyzer(), config=BedrockConfig(model_id=MODEL_ID)
            )
            out = await analyzer.analyze(planted_event("proc"))
        assert out.analyzer == "bedrock"
        assert out.requires_approval is True
        assert {s.action for s in out.plan} == {"ec2.start_instances"}
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
