"""The CLI's commands other than `run` and `demo`: small, each a function of the settings."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from aiops_agent.cli.render import incident_list, incident_timeline
from aiops_agent.domain.machine import InvalidTransition
from aiops_agent.domain.messages import Approved, Rejected
from aiops_agent.domain.models import WorkflowState
from aiops_agent.domain.ports import ConflictError
from aiops_agent.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _out(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _err(message: str) -> None:
    print(f"aiops-agent: {message}", file=sys.stderr)


# ---------------------------------------------------------------- explain


def explain(settings: Settings, path: Path, *, as_json: bool, analyzer: str | None) -> int:
    """Judge one event file. With the rules analyzer this makes no network call at all."""
    from aiops_agent.actions.registry import CATALOG
    from aiops_agent.analysis.factory import build_rules
    from aiops_agent.intake.envelope import InvalidEvent, parse_event

    settings = settings.model_copy(update={"analyzer": analyzer or settings.analyzer})
    try:
        events = parse_event(path.read_bytes())
    except OSError as exc:
        _err(f"cannot read {path}: {exc.strerror}")
        return EXIT_USAGE
    except InvalidEvent as exc:
        _err(f"cannot parse {path}: {exc}")
        return EXIT_USAGE
    if settings.analyzer == "bedrock":
        analyses = asyncio.run(_analyze_with_model(settings, events))
    else:
        rules = build_rules(settings)
        analyses = [rules.judge(event) for event in events]
    results: list[dict[str, Any]] = []
    for event, analysis in zip(events, analyses, strict=True):
        plan = []
        for step in analysis.plan:
            try:
                plan.append(CATALOG.validate(step).model_dump(mode="json"))
            except (KeyError, ValueError):
                continue
        results.append(
            {
                "event_id": event.event_id,
                "classification": analysis.classification.value,
                "confidence": analysis.confidence,
                "severity": analysis.severity.value,
                "resource_type": event.resource_type,
                "resource_id": event.resource_id,
                "region": event.region,
                "reasons": list(analysis.reasons),
                "plan": plan,
                "requires_approval": analysis.requires_approval
                or analysis.confidence < settings.confidence_threshold,
                "analyzer": analysis.analyzer,
                "intended": analysis.intended,
                "normalized": event.model_dump(mode="json"),
            }
        )
    if as_json:
        _out(results[0] if len(results) == 1 else results)
        return EXIT_OK
    for r in results:
        print(
            f"{r['resource_type']} {r['resource_id']} ({r['region']}): "
            f"{r['classification']} confidence {r['confidence']:.2f} severity {r['severity']}"
        )
        for reason in r["reasons"]:
            print(f"  - {reason}")
        steps = ", ".join(s["action"] for s in r["plan"]) or "none"
        print(f"  plan: {steps}")
    return EXIT_OK


async def _analyze_with_model(settings: Settings, events: list[Any]) -> list[Any]:
    """The guarded Bedrock analyzer over `events`; every fallback is in the reasons."""
    from aiops_agent.analysis.factory import build_analyzer, build_bedrock_clients
    from aiops_agent.app import build_clients

    async with build_clients(settings) as clients, contextlib.AsyncExitStack() as stack:
        bedrock = build_bedrock_clients(settings)
        if bedrock is not None:
            await stack.enter_async_context(bedrock)
        model = build_analyzer(settings, clients, None, None, bedrock_clients=bedrock)
        return [await model.analyze(event) for event in events]


# ---------------------------------------------------------------- AWS-backed commands


async def bootstrap(settings: Settings, *, as_json: bool) -> int:
    from aiops_agent.app import build_clients
    from aiops_agent.aws.trails import management_trail
    from aiops_agent.provision.bootstrap import bootstrap as do_bootstrap

    async with build_clients(settings) as clients:
        result = await do_bootstrap(clients, settings)
        trail = await management_trail(clients)
    if trail.logging is not True:
        # stderr, so that --json stays one object; the daemon says it again at start-up
        print(f"warning: {trail.detail}", file=sys.stderr)
    if as_json:
        _out(result.to_json())
        return EXIT_OK
    for name in result.created:
        print(f"created  {name}")
    for name in result.found:
        print(f"found    {name}")
    for key, value in result.to_json().items():
        print(f"{key}={value}")
    return EXIT_OK


async def send_event(settings: Settings, path: Path, via_eventbridge: bool) -> int:
    from aiops_agent.app import build_clients

    try:
        raw = json.loads(await asyncio.to_thread(path.read_text))
    except (OSError, ValueError) as exc:
        _err(f"cannot read {path}: {exc}")
        return EXIT_USAGE
    async with build_clients(settings) as clients:
        if via_eventbridge:
            events = await clients.client("events")
            entry = _put_events_entry(raw)
            response = await events.put_events(Entries=[entry])
            if response.get("FailedEntryCount"):
                _err(f"PutEvents failed: {response['Entries']}")
                return EXIT_FAILED
            print(response["Entries"][0].get("EventId", "sent"))
            return EXIT_OK
        if settings.queue_url is None:
            _err("invalid setting AIOPS_QUEUE_URL: required for send-event")
            return EXIT_USAGE
        sqs = await clients.client("sqs")
        sent = await sqs.send_message(QueueUrl=settings.queue_url, MessageBody=json.dumps(raw))
        print(sent["MessageId"])
    return EXIT_OK


def _put_events_entry(raw: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge entry from an envelope, or from a bare CloudTrail record."""
    if "detail-type" in raw:
        entry: dict[str, Any] = {
            "Source": raw["source"],
            "DetailType": raw["detail-type"],
            "Detail": json.dumps(raw.get("detail", {})),
            "Resources": raw.get("resources", []),
        }
    else:
        service = str(raw.get("eventSource", "unknown.amazonaws.com")).split(".")[0]
        entry = {
            "Source": f"aws.{service}",
            "DetailType": "AWS API Call via CloudTrail",
            "Detail": json.dumps(raw),
        }
    return entry


async def list_incidents(
    settings: Settings,
    *,
    state: str | None,
    resource_type: str | None,
    limit: int,
    as_json: bool,
) -> int:
    from aiops_agent.app import build_clients, build_store

    try:
        wanted = WorkflowState(state.upper()) if state else None
    except ValueError:
        _err(f"unknown state {state!r}; one of {', '.join(s.value for s in WorkflowState)}")
        return EXIT_USAGE
    async with build_clients(settings) as clients:
        store = build_store(settings, clients)
        found = await store.list_incidents(state=wanted, resource_type=resource_type, limit=limit)
    if as_json:
        _out([i.to_public() for i in found])
    else:
        print(incident_list(found) if found else "no incidents")
    return EXIT_OK


async def show_incident(settings: Settings, incident_id: str, *, as_json: bool) -> int:
    from aiops_agent.app import build_clients, build_store

    async with build_clients(settings) as clients:
        store = build_store(settings, clients)
        incident = await store.get(incident_id)
        if incident is not None and incident.timeline_elided:
            # The item keeps the first and last entries; the audit trail has all of them.
            trail = await store.audit_trail(incident_id)
            if len(trail) >= len(incident.timeline):
                incident = incident.model_copy(update={"timeline": tuple(trail)})
    if incident is None:
        _err(f"no incident {incident_id}")
        return EXIT_FAILED
    if as_json:
        _out(incident.to_public())
    else:
        print(incident_timeline(incident))
    return EXIT_OK


async def review(
    settings: Settings, incident_id: str, *, approve: bool, by: str | None, reason: str = ""
) -> int:
    from aiops_agent.app import build_clients, build_components
    from aiops_agent.engine.engine import NotFound
    from aiops_agent.obs.metrics import Metrics

    who = by or _whoami()
    signal: Approved | Rejected = Approved(by=who) if approve else Rejected(by=who, reason=reason)
    async with build_clients(settings) as clients:
        engine = build_components(settings, clients, Metrics()).engine
        try:
            incident = await engine.answer_review(incident_id, signal)
        except NotFound:
            _err(f"no incident {incident_id}")
            return EXIT_FAILED
        except InvalidTransition as exc:
            _err(f"incident {incident_id} is {exc.state.value}, not awaiting approval")
            return EXIT_FAILED
        except ConflictError:
            _err(f"incident {incident_id} changed while answering; try again")
            return EXIT_FAILED
    print(f"{incident_id}: {incident.workflow_state.value} ({incident.timeline[-1].detail})")
    return EXIT_OK


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "operator"
