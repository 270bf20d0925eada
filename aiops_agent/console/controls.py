"""The console's controls page: silences, freezes and the pause, to see and to set.

The same store as the CLI's (`ControlStore`, the patterns table), so every replica sees what is
set here. Each change is a POST with the CSRF token (`web.py`), recorded with the identity the
console authenticated (the silence's or freeze's author, who paused, who ended it).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from aiohttp import web

from aiops_agent.domain import durations
from aiops_agent.domain.autonomy import Freeze, Matcher, Silence
from aiops_agent.domain.ports import ControlError, ControlStore
from aiops_agent.store.control import new_freeze_id, new_silence_id

log = structlog.get_logger(__name__)

MAX_DURATION = timedelta(days=30)
MAX_MATCHERS = 10
MAX_REASON = 500
RECENT = 20
"""Ended silences and freezes shown below the active ones."""
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

CONTROL_NOTICES = {
    "silence-added": ("ok", "Silence added: matching events open no recovery and notify no one."),
    "silence-ended": ("ok", "Silence ended."),
    "freeze-added": ("ok", "Freeze added: nothing runs without a person while it lasts."),
    "freeze-ended": ("ok", "Freeze ended."),
    "paused": ("ok", "Paused: nothing runs without a person, on every replica, until resumed."),
    "resumed": ("ok", "Resumed."),
}


def parse_duration(text: str) -> timedelta:
    """The CLI's grammar (`90m`, `2h`, `1h30m`, `3d`, `2w`: domain.durations), at most 30 days
    from the console; ValueError saying what is accepted."""
    value = durations.parse_duration(text)
    if value > MAX_DURATION:
        raise ValueError("a duration from the console is at most 30 days")
    return value


def _reason(form: Any) -> str:
    return " ".join(str(form.get("reason", "")).split())[:MAX_REASON]


@dataclass
class ControlDeps:
    store: ControlStore
    now: Callable[[], datetime]


def add_control_routes(
    app: web.Application,
    deps: ControlDeps,
    render: Callable[..., web.Response],
    prefix: str,
) -> None:
    page = f"{prefix}/controls"

    async def show(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
        state = await deps.store.state()
        now = deps.now()
        return render(
            request,
            "controls.html",
            status=status,
            error=error,
            now=now,
            pause=state.pause,
            silences=state.active_silences(now),
            ended_silences=[s for s in state.silences if not s.active(now)][:RECENT],
            freezes=state.active_freezes(now),
            ended_freezes=[f for f in state.freezes if not f.active(now)][:RECENT],
            pauses=state.pauses[:RECENT],
            matcher_keys="resource_type, resource_id, region, account, classification, tag:NAME",
        )

    async def controls(request: web.Request) -> web.Response:
        return await show(request)

    async def change(
        request: web.Request, what: str, done: str, act: Callable[[str, Any], Awaitable[None]]
    ) -> web.Response:
        who = request["principal"].identity
        form = await request.post()
        try:
            await act(who, form)
        except (ValueError, ControlError) as exc:
            log.info("console.control_refused", what=what, who=who, why=str(exc))
            return await show(request, error=f"{what}: {exc}", status=409)
        log.info("console.control", what=what, who=who)
        raise web.HTTPSeeOther(f"{page}?done={done}")

    def _ident(request: web.Request) -> str:
        ident = request.match_info["ident"]
        if not _ID.match(ident):
            raise web.HTTPNotFound()
        return ident

    async def add_silence(request: web.Request) -> web.Response:
        async def act(who: str, form: Any) -> None:
            lines = str(form.get("matchers", "")).replace(",", "\n").splitlines()
            matchers = tuple(Matcher.parse(line) for line in lines if line.strip())
            if not matchers or len(matchers) > MAX_MATCHERS:
                raise ValueError(f"give 1 to {MAX_MATCHERS} matchers, one KEY=GLOB per line")
            reason = _reason(form)
            if not reason:
                raise ValueError("a silence needs a reason")
            now = deps.now()
            length = parse_duration(str(form.get("duration", "")))
            await deps.store.add_silence(
                Silence(
                    silence_id=new_silence_id(),
                    matchers=matchers,
                    starts_at=now,
                    ends_at=now + length,
                    author=who,
                    reason=reason,
                    created_at=now,
                )
            )

        return await change(request, "silence", "silence-added", act)

    async def expire_silence(request: web.Request) -> web.Response:
        ident = _ident(request)

        async def act(who: str, _: Any) -> None:
            await deps.store.expire_silence(ident, who, deps.now())

        return await change(request, "silence", "silence-ended", act)

    async def add_freeze(request: web.Request) -> web.Response:
        async def act(who: str, form: Any) -> None:
            reason = _reason(form)
            if not reason:
                raise ValueError("a freeze needs a reason")
            now = deps.now()
            length = parse_duration(str(form.get("duration", "")))
            await deps.store.add_freeze(
                Freeze(
                    freeze_id=new_freeze_id(),
                    starts_at=now,
                    ends_at=now + length,
                    author=who,
                    reason=reason,
                    created_at=now,
                )
            )

        return await change(request, "freeze", "freeze-added", act)

    async def end_freeze(request: web.Request) -> web.Response:
        ident = _ident(request)

        async def act(who: str, _: Any) -> None:
            await deps.store.end_freeze(ident, who, deps.now())

        return await change(request, "freeze", "freeze-ended", act)

    async def pause(request: web.Request) -> web.Response:
        async def act(who: str, form: Any) -> None:
            reason = _reason(form)
            if not reason:
                raise ValueError("a pause needs a reason")
            await deps.store.pause(who, reason, deps.now())

        return await change(request, "pause", "paused", act)

    async def resume(request: web.Request) -> web.Response:
        async def act(who: str, _: Any) -> None:
            await deps.store.resume(who, deps.now())

        return await change(request, "resume", "resumed", act)

    app.router.add_get("/controls", controls)
    app.router.add_post("/controls/silences", add_silence)
    app.router.add_post("/controls/silences/{ident}/expire", expire_silence)
    app.router.add_post("/controls/freezes", add_freeze)
    app.router.add_post("/controls/freezes/{ident}/end", end_freeze)
    app.router.add_post("/controls/pause", pause)
    app.router.add_post("/controls/resume", resume)
