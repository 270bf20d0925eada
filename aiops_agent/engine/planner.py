"""The planner: decides whether, when and with what a recovery may run.

In order: the catalog (only registered actions, with valid parameters), the global circuit
breaker (a mass of destructive incidents is an attack or a bad deploy, not N failures), the
resource's history (attempts that did not hold back off exponentially; after the last one a person
decides; an action that failed verification here is not tried again blindly), and the resource's
lease (one active recovery per resource, held by a conditional write, not a racy query).
A person's approval skips the breaker and the history: they decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from aiops_agent.domain.messages import (
    Escalated,
    Plan,
    PlanDeferred,
    PlanReady,
    Signal,
    Suppressed,
)
from aiops_agent.domain.models import (
    Autonomy,
    Incident,
    NormalizedEvent,
    PlanStep,
    WorkflowState,
)
from aiops_agent.domain.ports import (
    ActionCatalog,
    ChangeOrigin,
    Clock,
    Coordination,
    IncidentStore,
    Notifier,
)
from aiops_agent.intake.attribution import recorded_explanation
from aiops_agent.intake.spot import INTERRUPTION_ACTION
from aiops_agent.obs.metrics import Metrics

log = structlog.get_logger(__name__)

ATTEMPT_STATES = frozenset({WorkflowState.COMPLETED, WorkflowState.PARTIAL, WorkflowState.FAILED})
"""Outcomes of an earlier recovery that count as an attempt when the failure is back."""


@dataclass(frozen=True)
class PlannerConfig:
    max_attempts: int = 3
    attempt_window: timedelta = timedelta(minutes=60)
    backoff_base: timedelta = timedelta(minutes=5)
    lease_ttl: timedelta = timedelta(minutes=15)
    breaker_threshold: int = 10
    breaker_window: timedelta = timedelta(minutes=5)
    attribution_grace: timedelta = timedelta(0)
    """Wait, from the change, for the CloudTrail record of a change reported without its author
    (`AIOPS_ATTRIBUTION_GRACE_SECONDS`); 0 acts at once."""
    trail_logged: bool | None = None
    """Whether a CloudTrail trail records management events here (checked at start-up; None:
    unknown). Without one, a change a person made is never attributed: a person decides."""


@dataclass(frozen=True)
class Attributed:
    """The attribution step lets the plan go ahead: with a note for the timeline, and perhaps
    only with a person's approval."""

    note: str = ""
    ask_person: bool = False


SPOT_LOOKBACK = timedelta(minutes=30)
"""How long before an instance's stop or termination its Spot interruption warning counts (AWS
warns two minutes ahead; the state change can be delayed or redelivered)."""
ATTRIBUTION_LOOKBACK = timedelta(minutes=15)
"""How long before a change its call may have been recorded (a stop takes a while to land)."""


class Holds(Protocol):
    async def holds(self) -> list[str]:
        """Why nothing may run without a person right now (the pause, freezes), if anything."""


def lease_key(incident: Incident) -> str:
    return f"recovery:{incident.resource_key}"


@dataclass(frozen=True)
class KnownIncidents:
    """A resource's newest incidents (newest first by `created_at`, at most `limit`), as the
    engine's correlation query read them a moment ago, before it created the incident now being
    planned. Asked for the incidents created since a time, it answers without a query when it
    holds all of them: fewer than `limit` were read (the resource has no more), or the oldest
    one read was created before that time."""

    resource_key: str
    newest: tuple[Incident, ...]
    limit: int

    def since(self, resource_key: str, since: datetime) -> list[Incident] | None:
        """The incidents of `resource_key` created at or after `since`; None: not known."""
        if resource_key != self.resource_key:
            return None
        if len(self.newest) >= self.limit and self.newest[-1].created_at >= since:
            return None
        return [i for i in self.newest if i.created_at >= since]


class Planner:
    def __init__(
        self,
        *,
        store: IncidentStore,
        coordination: Coordination,
        catalog: ActionCatalog,
        notifier: Notifier,
        clock: Clock,
        metrics: Metrics,
        config: PlannerConfig | None = None,
        holds: Holds | None = None,
        origin: ChangeOrigin | None = None,
    ) -> None:
        self._holds = holds
        self._origin = origin
        self._store = store
        self._coord = coordination
        self._catalog = catalog
        self._notifier = notifier
        self._clock = clock
        self._metrics = metrics
        self._config = config or PlannerConfig()

    async def plan(
        self, incident: Incident, command: Plan, *, known: KnownIncidents | None = None
    ) -> Signal:
        """`known`: the resource's incidents as read a moment ago, before this incident was
        created; the spot and history checks use it instead of querying when it covers their
        window. (Not the attribution check: it looks for what another replica stored since.)"""
        steps = self._runnable(command.steps)
        if not steps:
            return PlanReady(command_id=command.id, steps=())
        reclaimed = await self._reclaimed(incident, command, known)
        if reclaimed is not None:
            return reclaimed
        attributed = await self._attribution(incident, command)
        if not isinstance(attributed, Attributed):
            return attributed
        not_needed = await self._prechecks(steps)
        if not_needed is not None:
            return Suppressed(command_id=command.id, reason=f"not needed: {not_needed}")
        if incident.approved_by is None:
            held = await self._held(incident, command)
            if held is not None:
                return held
            refused = await self._breaker(incident, command)
            if refused is not None:
                return refused
            decided = await self._history(incident, command, steps, known)
            if not isinstance(decided, list):
                return decided
            steps = decided
        now = self._clock.now()
        holder = await self._coord.acquire(
            lease_key(incident), incident.incident_id, now, self._config.lease_ttl
        )
        if holder is not None:
            self._metrics.suppressions.labels("lease").inc()
            return Suppressed(
                command_id=command.id, reason=f"recovery already in progress: {holder}"
            )
        return PlanReady(
            command_id=command.id,
            steps=tuple(steps),
            requires_approval=attributed.ask_person
            or any(self._catalog.requires_approval(s.action) for s in steps),
            note=attributed.note,
        )

    async def _recent(
        self, incident: Incident, since: datetime, known: KnownIncidents | None
    ) -> list[Incident]:
        """The resource's incidents created since `since`: from `known` if it covers them."""
        answered = known.since(incident.resource_key, since) if known is not None else None
        if answered is not None:
            return answered
        return await self._store.recent_for_resource(incident.resource_key, since)

    async def _reclaimed(
        self, incident: Incident, command: Plan, known: KnownIncidents | None
    ) -> Suppressed | None:
        """An instance AWS warned it would reclaim (Spot) is not started or rebuilt after.

        The warning comes about two minutes before the stop or termination, which EC2 reports
        without an author like any other: the warning, stored as its own incident, explains it.
        A person's approval decides otherwise.
        """
        event = incident.event
        if (
            event is None
            or incident.approved_by is not None
            or event.resource_type != "ec2"
            or event.principal
            or not event.action.startswith("state:")
        ):
            return None
        since = event.time - SPOT_LOOKBACK
        for recorded in await self._recent(incident, since, known):
            warning = recorded.event
            if warning is not None and warning.action == INTERRUPTION_ACTION:
                self._metrics.suppressions.labels("spot_reclaimed").inc()
                return Suppressed(
                    command_id=command.id,
                    reason=(
                        "not needed: AWS reclaimed this Spot instance (interruption warning "
                        f"{warning.event_id[:64]} at {warning.time.isoformat()}): "
                        "a reclaimed Spot instance is not recovered"
                    ),
                )
        return None

    async def _attribution(
        self, incident: Incident, command: Plan
    ) -> PlanDeferred | Suppressed | Attributed:
        """Wait for the author of a change reported without one, then look for it once more.

        An EC2 state change or a Parameter Store Change says what changed, not who changed it.
        AWS delivers the CloudTrail record of the call separately, usually later. If a trusted
        principal made the call (a deploy pipeline, the agent itself, Auto Scaling), the engine
        closes the incident when the record arrives. When the wait is over, the record may
        still have been stored under its own incident by another replica, in a race with this
        one: it is looked for, and it stops the plan.

        An instance says itself who stopped it (`StateReason`): a host failure, a scheduled
        retirement or the OS shutting down has no author to wait for, so the plan goes ahead at
        once. A stop requested through the API with no trail to name its author is not undone
        without a person.
        """
        grace = self._config.attribution_grace
        event = incident.event
        if not grace or event is None or event.principal or incident.approved_by is not None:
            return Attributed()
        if incident.authored_by:
            self._metrics.attribution.labels("author_joined").inc()
            return Attributed(
                note=f"made by {incident.authored_by} (its CloudTrail record joined): no wait"
            )
        who, said = await self._who(event)
        if who == "system":
            self._metrics.attribution.labels("system").inc()
            return Attributed(note=f"stopped by AWS or the instance itself ({said}): no author")
        until = event.time + grace
        if self._clock.now() < until:
            return PlanDeferred(
                command_id=command.id,
                until=until,
                reason=(
                    "the change was reported without its author: waiting for its CloudTrail "
                    "record (a trusted principal's change needs no recovery)"
                ),
            )
        since = event.time - ATTRIBUTION_LOOKBACK
        for recorded in await self._store.recent_for_resource(incident.resource_key, since):
            call = recorded_explanation(recorded, event)
            if call is not None:
                return Suppressed(
                    command_id=command.id,
                    reason=(
                        f"not needed: {call.action} by {call.principal} made this change "
                        f"({'; '.join(recorded.reasons)[:200]})"
                    ),
                )
        if who == "user" and self._config.trail_logged is False:
            self._metrics.attribution.labels("unattributable").inc()
            return Attributed(
                note=(
                    f"requested through the API ({said}) and no CloudTrail trail records who "
                    "did it: a person decides"
                ),
                ask_person=True,
            )
        self._metrics.attribution.labels("waited").inc()
        return Attributed()

    async def _who(self, event: NormalizedEvent) -> tuple[str, str]:
        if self._origin is None or not event.action.startswith("state:"):
            return "unknown", ""
        try:
            return await self._origin.origin(event)
        except Exception as exc:  # a failed look-up means: wait, as without it
            log.warning("plan.origin_failed", error=repr(exc)[:200])
            return "unknown", ""

    async def _held(self, incident: Incident, command: Plan) -> Escalated | None:
        """Paused or frozen since the policy decided `act`: a person decides after all."""
        policy = incident.policy
        if self._holds is None or (policy is not None and policy.autonomy is not Autonomy.ACT):
            return None
        held = await self._holds.holds()
        if not held:
            return None
        return Escalated(command_id=command.id, reason=f"{'; '.join(held)}: act becomes ask")

    def _cooldown(self, incident: Incident) -> timedelta:
        """The resource's cooldown: its `aiops:tier` one, else the configured default."""
        policy = incident.policy
        if policy is None or policy.cooldown_minutes is None:
            return self._config.backoff_base
        return timedelta(minutes=policy.cooldown_minutes)

    async def _prechecks(self, steps: list[PlanStep]) -> str | None:
        """The first reason an action of the plan gives for not being needed, if any."""
        for step in steps:
            try:
                reason = await self._catalog.get(step.action).precheck(step.params)
            except Exception as exc:  # a failed look-up is no reason to skip a recovery
                log.warning("plan.precheck_failed", action=step.action, error=repr(exc))
                continue
            if reason:
                return reason
        return None

    def _runnable(self, steps: tuple[PlanStep, ...]) -> list[PlanStep]:
        kept = []
        for step in steps:
            try:
                kept.append(self._catalog.validate(step))
            except (KeyError, ValueError) as exc:
                log.warning("plan.step_rejected", action=step.action, error=str(exc))
        return kept

    async def _breaker(self, incident: Incident, command: Plan) -> Suppressed | None:
        cfg = self._config
        now = self._clock.now()
        count = await self._coord.count(
            "destructive", incident.incident_id, now, cfg.breaker_window
        )
        is_open = count > cfg.breaker_threshold
        self._metrics.breaker_open.labels("recovery").set(1 if is_open else 0)
        if not is_open:
            return None
        self._metrics.suppressions.labels("breaker").inc()
        minutes = cfg.breaker_window.total_seconds() / 60
        reason = (
            f"circuit breaker open: {count} destructive incidents in {minutes:g} min "
            f"(more than {cfg.breaker_threshold}); autonomous recovery stopped"
        )
        # One alert per opening, whichever replica sees it first.
        first = await self._coord.acquire(
            "breaker-alert", incident.incident_id, now, cfg.breaker_window
        )
        if first is None:
            log.error("breaker.opened", count=count, window_min=minutes)
            await self._notifier.publish(
                "[aiops] circuit breaker open: autonomous recovery stopped",
                f"{reason}. A mass deletion is an attack or a bad deploy, not independent "
                "failures: incidents are recorded and notified, nothing is changed until the "
                "rate falls.",
                {"kind": "breaker"},
            )
        return Suppressed(command_id=command.id, reason=reason)

    async def _history(
        self,
        incident: Incident,
        command: Plan,
        steps: list[PlanStep],
        known: KnownIncidents | None,
    ) -> Escalated | PlanDeferred | list[PlanStep]:
        cfg = self._config
        now = self._clock.now()
        recent = await self._recent(incident, now - cfg.attempt_window, known)
        attempts = [
            i
            for i in recent
            if i.incident_id != incident.incident_id
            and i.workflow_state in ATTEMPT_STATES
            and any(r.status in ("SUCCEEDED", "FAILED") for r in i.recovery_actions)
        ]
        window_min = cfg.attempt_window.total_seconds() / 60
        if len(attempts) >= cfg.max_attempts:
            return Escalated(
                command_id=command.id,
                reason=(
                    f"{len(attempts)} recovery attempts on this resource in the last "
                    f"{window_min:g} min did not hold"
                ),
            )
        failed_verification = {
            r.action
            for i in attempts
            if i.verification is not None and i.verification.status == "FAILED"
            for r in i.recovery_actions
        }
        kept = [s for s in steps if s.action not in failed_verification]
        if not kept:
            return Escalated(
                command_id=command.id,
                reason=(
                    f"{', '.join(sorted(failed_verification))} failed verification on this "
                    "resource recently; not trying it again blindly"
                ),
            )
        if attempts:
            last = max(i.updated_at for i in attempts)
            cooldown = self._cooldown(incident)
            until = last + cooldown * (2 ** (len(attempts) - 1))
            if now < until:
                tier = incident.policy.tier if incident.policy else "standard"
                return PlanDeferred(
                    command_id=command.id,
                    until=until,
                    reason=(
                        f"attempt {len(attempts) + 1} of {cfg.max_attempts}: the last recovery "
                        f"of this resource did not hold (cooldown {cooldown.total_seconds() / 60:g}"
                        f" min, tier {tier})"
                    ),
                )
        return kept
