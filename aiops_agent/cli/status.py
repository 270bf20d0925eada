"""`aiops-agent status`: the one screen an on-call person opens first.

Paused or not (who, why, since), the recovery breaker, the active freezes (own ones and CLOSED
change calendars) and silences, open incidents by state, and the queue's depth.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops_agent.cli.control import (
    ControlCommands,
    freeze_json,
    freeze_table,
    silence_json,
    silence_table,
)
from aiops_agent.domain.autonomy import Freeze, Matcher, Silence
from aiops_agent.domain.models import OPEN_STATES
from aiops_agent.settings import Settings

COUNT_LIMIT = 1000
"""Open incidents counted per state (more shows as 1000+)."""


async def gather_status(settings: Settings) -> dict[str, Any]:
    from aiops_agent.app import build_clients, build_store
    from aiops_agent.store.coordination import DynamoCoordination

    now = datetime.now(UTC)
    async with build_clients(settings) as clients:
        control = ControlCommands(settings, clients)
        state = await control.store.state()
        freezes = [*state.active_freezes(now), *await control.calendar_freezes(now)]
        store = build_store(settings, clients)
        counts = await asyncio.gather(
            *(store.list_incidents(state=s, limit=COUNT_LIMIT) for s in OPEN_STATES)
        )
        window = timedelta(minutes=settings.breaker_window_minutes)
        destructive = await DynamoCoordination(clients, settings.patterns_table).peek(
            "destructive", now, window
        )
        queue = await _queue(clients, settings.queue_url)
    pause = state.pause
    return {
        "at": now.isoformat(timespec="seconds"),
        "paused": {
            "paused": pause.paused,
            "by": pause.by if pause.paused else None,
            "reason": pause.reason if pause.paused else None,
            "since": pause.since.isoformat() if pause.paused and pause.since else None,
        },
        "mode": settings.mode,
        "breaker": {
            "open": destructive > settings.breaker_threshold,
            "destructive_incidents": destructive,
            "threshold": settings.breaker_threshold,
            "window_minutes": settings.breaker_window_minutes,
        },
        "freezes": [freeze_json(f, now) for f in freezes],
        "silences": [silence_json(s, now) for s in state.active_silences(now)],
        "open_incidents": {
            s.value: len(found) for s, found in zip(OPEN_STATES, counts, strict=True)
        },
        "queue": queue,
    }


async def _queue(clients: Any, queue_url: str | None) -> dict[str, Any] | None:
    if not queue_url:
        return None
    from aiops_agent.sources.sqs import SqsConsumer

    sqs = await clients.client("sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    async def depth(url: str) -> dict[str, int]:
        got = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names))["Attributes"]
        return {"visible": int(got[names[0]]), "in_flight": int(got[names[1]])}

    facts = await SqsConsumer.queue_facts(clients, queue_url)
    dlq = await depth(facts.dead_letter_url) if facts.dead_letter_url else None
    return {"url": queue_url, **await depth(queue_url), "dead_letter": dlq}


def render_status(status: dict[str, Any]) -> str:
    now = datetime.fromisoformat(status["at"])
    p = status["paused"]
    lines = [
        f"PAUSED by {p['by']} since {p['since']}: {p['reason']}" if p["paused"] else "running",
    ]
    if status["mode"] == "shadow":
        lines.append("mode: shadow (decides and records, changes nothing)")
    b = status["breaker"]
    lines.append(
        f"breaker: {'OPEN' if b['open'] else 'closed'} ({b['destructive_incidents']} destructive "
        f"incidents in {b['window_minutes']:g} min, opens above {b['threshold']})"
    )
    open_counts = {k: v for k, v in status["open_incidents"].items() if v}
    shown = ", ".join(f"{k} {v}" for k, v in open_counts.items()) or "none"
    lines.append(f"open incidents: {shown}")
    q = status["queue"]
    if q is not None:
        dlq = q["dead_letter"]
        dead = f", dead-letter {dlq['visible']}" if dlq is not None else ""
        lines.append(f"queue: {q['visible']} waiting, {q['in_flight']} in flight{dead}")
    lines.append("")
    lines.append(f"freezes: {len(status['freezes'])} active")
    if status["freezes"]:
        lines.append(freeze_table([_freeze(f) for f in status["freezes"]], now))
    lines.append(f"silences: {len(status['silences'])} active")
    if status["silences"]:
        lines.append(silence_table([_silence(s) for s in status["silences"]], now))
    return "\n".join(lines)


def _freeze(data: dict[str, Any]) -> Freeze:
    return Freeze.model_validate({k: v for k, v in data.items() if k != "active"})


def _silence(data: dict[str, Any]) -> Silence:
    fields = {k: v for k, v in data.items() if k != "active"}
    fields["matchers"] = [Matcher.parse(m) for m in data["matchers"]]
    return Silence.model_validate(fields)


async def status(settings: Settings, *, as_json: bool) -> int:
    found = await gather_status(settings)
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2, default=str) + "\n")
    else:
        print(render_status(found))
    return 0
