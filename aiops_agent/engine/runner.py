"""Carries out one command of the state machine and reports its outcome as a signal.

Every command is bounded by a deadline and idempotent: the engine may run a pending command again
after a crash. An exception that escapes `run` leaves the command pending for a later retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog

from aiops_agent.domain.messages import (
    AnalysisFailed,
    Analyze,
    Analyzed,
    Command,
    ExecuteStep,
    Notified,
    Notify,
    Plan,
    Signal,
    StepFailed,
    StepSucceeded,
    Verify,
    VerifyResult,
)
from aiops_agent.domain.models import Classification, Incident
from aiops_agent.domain.ports import ActionCatalog, Analyzer, CheckOutcome, Clock, Notifier
from aiops_agent.engine.clock import SystemClock
from aiops_agent.engine.gate import PolicyGate
from aiops_agent.engine.planner import KnownIncidents, Planner

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RunnerConfig:
    command_timeout: float = 45.0
    execute_timeout: float = 80.0
    """A recovery step may wait for the resource (a stop before a start): longer, but always
    shorter than the step lease, so that no other worker resumes a step that is still running."""
    console_url: str | None = None
    """`AIOPS_CONSOLE_URL`: notifications link to the incident's console page when set."""
    consistency_window: timedelta = timedelta(seconds=60)
    """After an action, how long a FAILED check is taken for a possibly stale read (EC2, ECS,
    SSM are eventually consistent: a read may show the state from before the action) and
    verified again instead of failing; past it, FAILED is FAILED."""


def settling(
    outcome: CheckOutcome, acted: datetime | None, now: datetime, window: timedelta
) -> CheckOutcome:
    """A FAILED check soon after the action is PENDING, unless the outcome is `settled`."""
    if outcome.status != "FAILED" or outcome.settled or acted is None:
        return outcome
    age = now - acted
    if age >= window:
        return outcome
    return CheckOutcome(
        "PENDING",
        f"{outcome.detail} (read {age.total_seconds():.0f} s after the action, which AWS may "
        "not show yet: checking again)",
        outcome.checks,
    )


class CommandRunner:
    def __init__(
        self,
        *,
        analyzer: Analyzer,
        catalog: ActionCatalog,
        planner: Planner,
        notifier: Notifier,
        gate: PolicyGate | None = None,
        config: RunnerConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._gate = gate
        """None: no policy decision (every resource as `act`): offline tools and unit tests."""
        self._analyzer = analyzer
        self._catalog = catalog
        self._notifier = notifier
        self._planner = planner
        self._config = config or RunnerConfig()

    def deadline(self, command: Command) -> float:
        """Seconds `run` gives `command` before it is cancelled."""
        if isinstance(command, ExecuteStep):
            return self._config.execute_timeout
        return self._config.command_timeout

    async def run(
        self, incident: Incident, command: Command, *, known: KnownIncidents | None = None
    ) -> Signal:
        """Carry out `command`; `known` is what a query read of the resource's incidents a
        moment ago (a Plan uses it instead of asking again, where it covers the question)."""
        async with asyncio.timeout(self.deadline(command)):
            match command:
                case Analyze():
                    return await self._analyze(incident, command)
                case Plan():
                    return await self._planner.plan(incident, command, known=known)
                case ExecuteStep():
                    return await self._execute(command)
                case Verify():
                    return await self._verify(incident, command)
                case Notify():
                    return await self._notify(incident, command)
        raise TypeError(f"unknown command {command!r}")  # pragma: no cover

    async def analyze(self, incident: Incident, command: Analyze) -> Analyzed | AnalysisFailed:
        """The analysis alone, without the policy decision (see `judge`)."""
        async with asyncio.timeout(self.deadline(command)):
            return await self._analysis(incident, command)

    async def judge(
        self,
        incident: Incident,
        signal: Analyzed | AnalysisFailed,
        earlier: Sequence[Incident] | None = None,
    ) -> Analyzed | AnalysisFailed:
        """`signal` with the policy decision about `incident` (none for a NORMAL verdict).

        `earlier`: the resource's newest incidents as the caller just read them, so that the
        tags an earlier sighting recorded cost no query of their own.
        """
        if self._gate is None:
            return signal
        if isinstance(signal, Analyzed):
            if signal.analysis.classification is Classification.NORMAL:
                return signal
            incident = incident.model_copy(
                update={"classification": signal.analysis.classification}
            )
        async with asyncio.timeout(self._config.command_timeout):
            decision, tags, read_at = await self._gate.decide(incident, earlier)
        update = {
            "policy": decision,
            "tags": tags.tags,
            "tags_read_at": read_at if tags.tags else None,
        }
        return signal.model_copy(update=update)

    async def _analyze(self, incident: Incident, command: Analyze) -> Signal:
        return await self.judge(incident, await self._analysis(incident, command))

    async def _analysis(self, incident: Incident, command: Analyze) -> Analyzed | AnalysisFailed:
        try:
            analysis = await self._analyzer.analyze(incident.event)
        except Exception as exc:  # the analyzer's failure is an outcome, not a crash
            log.warning("analysis.failed", error=repr(exc))
            error = f"{type(exc).__name__}: {exc}"
            return AnalysisFailed(command_id=command.id, error=error)
        return Analyzed(command_id=command.id, analysis=analysis)

    async def _execute(self, command: ExecuteStep) -> Signal:
        action = self._catalog.get(command.action)
        try:
            outcome = await action.execute(command.params, command.idempotency_token)
        except Exception as exc:
            log.warning("step.error", action=command.action, error=repr(exc))
            return StepFailed(
                command_id=command.id, step=command.step, error=f"{type(exc).__name__}: {exc}"
            )
        if not outcome.ok:
            return StepFailed(command_id=command.id, step=command.step, error=outcome.detail)
        return StepSucceeded(
            command_id=command.id, step=command.step, detail=outcome.detail, result=outcome.result
        )

    async def _verify(self, incident: Incident, command: Verify) -> Signal:
        outcomes: list[CheckOutcome] = []
        for record in incident.recovery_actions:
            if record.status != "SUCCEEDED":
                continue
            action = self._catalog.get(record.action)
            params = incident.plan[record.step].params
            try:
                outcome = await action.verify(params, record.result)
            except Exception as exc:
                log.warning("verify.error", action=record.action, error=repr(exc))
                outcomes.append(CheckOutcome("PENDING", f"{record.action}: check failed: {exc}"))
                continue
            window = self._config.consistency_window
            outcomes.append(settling(outcome, record.finished_at, self._clock.now(), window))
        status, detail, checks = combine_checks(outcomes)
        return VerifyResult(command_id=command.id, status=status, detail=detail, checks=checks)

    async def _notify(self, incident: Incident, command: Notify) -> Signal:
        attributes = {
            "incident_id": incident.incident_id,
            "workflow_state": incident.workflow_state.value,
            "resource_type": incident.resource_type,
            "classification": str(incident.classification or "UNKNOWN"),
        }
        message = render_message(incident, command.message, console_url=self._config.console_url)
        await self._notifier.publish(command.subject, message, attributes)
        return Notified(command_id=command.id)


def combine_checks(
    outcomes: Sequence[CheckOutcome],
) -> tuple[Any, str, tuple[dict[str, Any], ...]]:
    """All passed: PASSED; any pending: PENDING; all failed: FAILED; a mix: PARTIAL."""
    checks = tuple(dict(c) for o in outcomes for c in o.checks)
    detail = "; ".join(o.detail for o in outcomes) or "nothing to verify"
    statuses = {o.status for o in outcomes}
    if not outcomes:
        return "FAILED", detail, checks
    if "PENDING" in statuses:
        return "PENDING", detail, checks
    if statuses == {"PASSED"}:
        return "PASSED", detail, checks
    if statuses == {"FAILED"}:
        return "FAILED", detail, checks
    return "PARTIAL", detail, checks


def incident_link(console_url: str, incident_id: str) -> str:
    """The incident's page in the console whose public base URL is `console_url`."""
    base = console_url.rstrip("/")
    if not base.endswith("/console"):
        base += "/console"
    return f"{base}/incidents/{quote(incident_id, safe='')}"


def render_message(incident: Incident, summary: str, *, console_url: str | None = None) -> str:
    lines = [summary, ""]
    if console_url:
        lines.append(f"console: {incident_link(console_url, incident.incident_id)}")
    lines += [
        f"incident: {incident.incident_id}",
        f"resource: {incident.resource_type} {incident.resource_id} ({incident.region})",
        f"classification: {incident.classification} confidence: {incident.confidence}",
        f"state: {incident.workflow_state.value}",
    ]
    if incident.approved_by:
        lines.append(f"approved by: {incident.approved_by}")
    lines += ["timeline:"]
    lines += [f"  {e.at.isoformat()} {e.state.value:<18} {e.detail}" for e in incident.timeline]
    return "\n".join(lines)
