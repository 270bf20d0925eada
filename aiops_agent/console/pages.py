"""The console's pages: the incident list, one incident, its review, and the sign-in.

Every GET only reads; every change is a POST (checked for its CSRF token by `web.py`) answered
with a redirect to the page that shows the result (POST-redirect-GET), so a reload never sends
an answer twice and the outcome is on screen at once.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2
import structlog
from aiohttp import web

from aiops_agent.console.auth import COOKIE_PATH, SESSION_COOKIE, clean_name, secure_cookies
from aiops_agent.console.controls import CONTROL_NOTICES, ControlDeps, add_control_routes
from aiops_agent.console.web import PREFIX, ConsoleDeps
from aiops_agent.domain.machine import InvalidTransition
from aiops_agent.domain.messages import Approved, Rejected
from aiops_agent.domain.models import OPEN_STATES, Incident, WorkflowState
from aiops_agent.domain.ports import ConflictError

log = structlog.get_logger(__name__)

CONTROLS_ON = web.AppKey("controls_on", bool)
LIST_LIMIT = 100
"""Incidents on one list page: every open one first, then the newest closed ones."""
MAX_REASON = 500
_INCIDENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_RESOURCE_TYPE = re.compile(r"^[a-z0-9-]{1,40}$")

NOTICES = {
    "approved": ("ok", "Approved: the plan runs now. This page shows its progress."),
    "rejected": ("ok", "Rejected: the incident is closed and nothing runs."),
    "conflict": ("warn", "Someone else answered this review at the same moment; theirs counts."),
    "not-waiting": ("warn", "This incident is no longer waiting for approval: nothing was done."),
    "reason-required": ("warn", "A rejection needs a reason: nothing was done."),
    "signed-out": ("ok", "Signed out."),
}
"""What a redirect may ask a page to say: fixed texts, never echoed input."""

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("aiops_agent.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def _headline(incident: Incident) -> str:
    """The incident's latest news: its last timeline entry other than a notification's."""
    for entry in reversed(incident.timeline):
        if not entry.detail.startswith(("notification sent", "notification failed")):
            return entry.detail
    return ""


_ENV.filters["when"] = _when
_ENV.filters["headline"] = _headline
_STYLESHEET = resources.files("aiops_agent.console").joinpath("static/console.css").read_bytes()


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    principal = request.get("principal")
    done = request.query.get("done", "")
    notice = NOTICES.get(done) or CONTROL_NOTICES.get(done)
    html = _ENV.get_template(template).render(
        prefix=PREFIX,
        principal=principal,
        notice=notice,
        states=[s.value for s in WorkflowState],
        controls=request.config_dict.get(CONTROLS_ON, False),
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def add_routes(app: web.Application, deps: ConsoleDeps) -> None:
    async def index(_: web.Request) -> web.Response:
        raise web.HTTPSeeOther(f"{PREFIX}/incidents")

    async def stylesheet(_: web.Request) -> web.Response:
        return web.Response(body=_STYLESHEET, content_type="text/css", charset="utf-8")

    async def incident_list(request: web.Request) -> web.Response:
        state_text = request.query.get("state", "").strip().upper()
        type_text = request.query.get("type", "").strip().lower()
        state = WorkflowState(state_text) if state_text in WorkflowState.__members__ else None
        rtype = type_text if _RESOURCE_TYPE.match(type_text) else None
        incidents = await list_open_first(deps, state, rtype)
        return render(
            request,
            "list.html",
            incidents=incidents,
            open_count=sum(1 for i in incidents if not i.terminal),
            state=state.value if state else "",
            rtype=rtype or "",
        )

    async def incident_page(request: web.Request) -> web.Response:
        incident = await _incident(deps, request)
        audit = await deps.store.audit_trail(incident.incident_id)
        public = incident.to_public()
        return render(
            request,
            "incident.html",
            incident=incident,
            policy=public.get("policy"),
            audit=audit,
            waiting=incident.workflow_state is WorkflowState.AWAITING_APPROVAL,
        )

    async def approve(request: web.Request) -> web.Response:
        return await _answer(deps, request, approve=True)

    async def reject(request: web.Request) -> web.Response:
        return await _answer(deps, request, approve=False)

    async def signin_page(request: web.Request) -> web.Response:
        if deps.token_auth is None:
            raise web.HTTPNotFound()
        return render(request, "signin.html", next=_next(request.query.get("next")), failed=False)

    async def signin(request: web.Request) -> web.Response:
        token_auth = deps.token_auth
        if token_auth is None:
            raise web.HTTPNotFound()
        form = await request.post()
        token, name = str(form.get("token", "")), clean_name(str(form.get("name", "")))
        target = _next(str(form.get("next", "")))
        if not name or not token_auth.token_matches(token):
            deps.metrics.console_refused("signin")
            log.warning("console.signin_failed", name=name)
            return render(request, "signin.html", status=401, next=target, failed=True)
        response = web.HTTPSeeOther(target)
        response.set_cookie(
            SESSION_COOKIE,
            token_auth.new_session(name),
            path=COOKIE_PATH,
            max_age=int(deps.session_seconds),
            httponly=True,
            secure=secure_cookies(request),
            samesite="Strict",
        )
        log.info("console.signed_in", name=name)
        raise response

    async def signout(request: web.Request) -> web.Response:
        response = web.HTTPSeeOther(f"{PREFIX}/signin?done=signed-out")
        response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        raise response

    app.router.add_get("/", index)
    app.router.add_get("/static/console.css", stylesheet)
    app.router.add_get("/incidents", incident_list)
    app.router.add_get("/incidents/{incident_id}", incident_page)
    app.router.add_post("/incidents/{incident_id}/approve", approve)
    app.router.add_post("/incidents/{incident_id}/reject", reject)
    app.router.add_get("/signin", signin_page)
    app.router.add_post("/signin", signin)
    app.router.add_post("/signout", signout)
    if deps.control is not None:
        app[CONTROLS_ON] = True
        add_control_routes(app, ControlDeps(store=deps.control, now=deps.now), render, PREFIX)


def _next(raw: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if raw and raw.startswith(f"{PREFIX}/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return f"{PREFIX}/incidents"


async def _incident(deps: ConsoleDeps, request: web.Request) -> Incident:
    incident_id = request.match_info["incident_id"]
    if not _INCIDENT_ID.match(incident_id):
        raise web.HTTPNotFound(text="404: no such incident\n")
    incident = await deps.store.get(incident_id)
    if incident is None:
        raise web.HTTPNotFound(text="404: no such incident\n")
    return incident


async def list_open_first(
    deps: ConsoleDeps, state: WorkflowState | None, rtype: str | None
) -> list[Incident]:
    """Open incidents first (newest change first), then closed ones; one index query per state.

    Querying the state index once per state keeps the page off the table scan that a listing
    without a filter would otherwise be.
    """
    wanted = [state] if state is not None else list(WorkflowState)
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                deps.store.list_incidents(state=s, resource_type=rtype, limit=LIST_LIMIT)
            )
            for s in wanted
        ]
    found = [i for task in tasks for i in task.result()]
    open_states = set(OPEN_STATES)
    found.sort(key=lambda i: i.updated_at, reverse=True)
    found.sort(key=lambda i: i.workflow_state not in open_states)
    return found[:LIST_LIMIT]


async def _answer(deps: ConsoleDeps, request: web.Request, *, approve: bool) -> web.Response:
    incident = await _incident(deps, request)
    principal = request["principal"]
    form = await request.post()
    reason = " ".join(str(form.get("reason", "")).split())[:MAX_REASON]
    answer = "approve" if approve else "reject"
    page = f"{PREFIX}/incidents/{incident.incident_id}"
    if not approve and not reason:
        raise web.HTTPSeeOther(f"{page}?done=reason-required")
    signal: Approved | Rejected = (
        Approved(by=principal.identity, reason=reason)
        if approve
        else Rejected(by=principal.identity, reason=reason)
    )
    try:
        await deps.review(incident.incident_id, signal)
        outcome, done = "applied", ("approved" if approve else "rejected")
    except InvalidTransition:
        outcome, done = "not_waiting", "not-waiting"
    except ConflictError:
        outcome, done = "conflict", "conflict"
    deps.metrics.console_review(answer, outcome)
    log.info(
        "console.review",
        incident_id=incident.incident_id,
        answer=answer,
        outcome=outcome,
        who=principal.identity,
    )
    raise web.HTTPSeeOther(f"{page}?done={done}")
