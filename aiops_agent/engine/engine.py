"""The imperative shell around `decide`: load, decide, save, carry out, repeat.

The invariant: a command with side effects runs only after the incident that holds it in its
`pending` outbox has been stored. So a crash at any point loses at most the command in flight,
which whoever resumes the incident runs again (every command is idempotent). A save is
conditional on the version read; losing that race means another worker owns the incident, and
this one stops.

One save is left out because nothing needs it: a read-only verification's outcome followed by
the notification it decides. A crash after the notification and before the save resumes from
the verification (stored, pending), which is read again and notifies again: the same
at-least-once notification a stored outbox gives. It is left out only while the step lease
still covers the notification, so that no other worker resumes the incident under it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import structlog

from aiops_agent.domain.machine import InvalidTransition, Policy, decide
from aiops_agent.domain.messages import (
    Analyze,
    Analyzed,
    Approved,
    Command,
    EventReceived,
    Notify,
    Rejected,
    RelatedEvent,
    Signal,
    Tick,
    Verify,
    command_from_dict,
)
from aiops_agent.domain.models import (
    Classification,
    Incident,
    NormalizedEvent,
    WorkflowState,
    incident_id_for,
)
from aiops_agent.domain.ports import Clock, ConflictError, Coordination, IncidentStore
from aiops_agent.engine.locks import KeyedLocks
from aiops_agent.engine.planner import KnownIncidents, lease_key
from aiops_agent.engine.runner import CommandRunner
from aiops_agent.intake.attribution import explains, recorded_explanation, reported_as
from aiops_agent.intake.generic import GENERIC
from aiops_agent.obs.metrics import Metrics

log = structlog.get_logger(__name__)

MAX_ROUNDS = 32
"""A bound on commands per drive: the state machine has no cycles without a stored wait."""
SAVE_ATTEMPTS = 5
"""Reload-and-decide-again attempts when a conditional save loses to another writer."""
LATEST = 20
"""A resource's newest incidents read for correlation (one query); an open one further back, or
more than this many in the correlation window, is looked up on its own."""
CLOCK_SKEW = timedelta(seconds=60)
"""How much earlier than its call a report of the effect may be stamped (clocks differ)."""


class NotFound(Exception):
    pass


class Engine:
    def __init__(
        self,
        *,
        store: IncidentStore,
        runner: CommandRunner,
        clock: Clock,
        policy: Policy,
        metrics: Metrics,
        coordination: Coordination,
        step_lease: timedelta = timedelta(seconds=60),
        correlation_window: timedelta = timedelta(minutes=15),
    ) -> None:
        self._store = store
        self._runner = runner
        self._clock = clock
        self._policy = policy
        self._metrics = metrics
        self._lease = step_lease
        self._coord = coordination
        self._correlation_window = correlation_window
        self._locks = KeyedLocks()

    # ------------------------------------------------------------ entry points

    async def handle_event(self, event: NormalizedEvent) -> Incident | None:
        """Turn one normalized event into a new incident, or join it to an open one.

        Returns the incident as it stands (None only for a normal event that was not stored).
        A NORMAL verdict costs no store access, except an intended call whose effect AWS also
        reports without an author (a trusted StopInstances, PutParameter, ...): a query and,
        unless it explains a waiting incident, one write that records it.
        """
        self._metrics.event_received(event.resource_type)
        self._metrics.event_kind(
            event.source, event.detail_type, generic=bool(event.details.get(GENERIC))
        )
        incident_id = incident_id_for(event.event_id, event.resource_key)
        structlog.contextvars.bind_contextvars(incident_id=incident_id, event_id=event.event_id)
        try:
            return await self._handle_event(event, incident_id)
        finally:
            structlog.contextvars.unbind_contextvars("incident_id", "event_id")

    async def resume(self, incident_id: str) -> Incident | None:
        """Pick up an incident the sweeper found due: a stored wait, or an orphaned step."""
        structlog.contextvars.bind_contextvars(incident_id=incident_id)
        try:
            incident = await self._store.get(incident_id)
            if incident is None:
                return None
            async with self._locks.hold(incident.resource_key):
                return await self._resume(incident)
        finally:
            structlog.contextvars.unbind_contextvars("incident_id")

    async def answer_review(self, incident_id: str, signal: Approved | Rejected) -> Incident:
        """Apply a reviewer's answer; the daemon's sweeper carries on from there."""
        incident = await self._store.get(incident_id)
        if incident is None:
            raise NotFound(incident_id)
        new, _ = decide(incident, signal, self._clock.now(), self._policy)
        if new.pending:
            # Due at once: the next sweep of any replica resumes it.
            new = new.model_copy(update={"next_check_at": self._clock.now()})
        saved = await self._store.save(new)
        self._observe(incident, saved)
        return saved

    # ------------------------------------------------------------ internals

    async def _handle_event(self, event: NormalizedEvent, incident_id: str) -> Incident | None:
        now = self._clock.now()
        incident = Incident(
            incident_id=incident_id,
            event_id=event.event_id,
            resource_type=event.resource_type,
            resource_id=event.resource_id,
            region=event.region,
            resource_key=event.resource_key,
            event=event,
            created_at=now,
            updated_at=now,
        )
        received, _ = decide(incident, EventReceived(event=event), now, self._policy)
        # Analysis has no side effects: run it before the first write, so that a normal event
        # never costs a write.
        analyze = command_from_dict(received.pending[0])
        if not isinstance(analyze, Analyze):  # pragma: no cover - the machine's first command
            raise TypeError(f"a received event's first command is {analyze!r}")
        analyzed = await self._runner.analyze(received, analyze)
        if isinstance(analyzed, Analyzed):
            cls = analyzed.analysis.classification
            self._metrics.classified(cls.value, event.resource_type)
            if cls is Classification.NORMAL:
                ignored, _ = decide(received, analyzed, self._clock.now(), self._policy)
                log.info("event.normal", action=event.action, reasons=list(ignored.reasons))
                self._metrics.incident_closed(WorkflowState.IGNORED.value, event.resource_type, 0)
                if event.details.get("resolves"):
                    return await self._note_resolution(event)
                if analyzed.analysis.intended and reported_as(event):
                    return await self._note_intended(event, ignored)
                return None
        async with self._locks.hold(event.resource_key):
            # Only the look-up and the create hold the lock: a second event about this resource
            # then finds the incident open and joins it while the first one is being driven.
            # One query: the resource's newest incidents hold this event's own incident if it
            # was delivered before (ids derive from the event), and what it may belong to.
            latest = await self._store.latest_for_resource(event.resource_key, LATEST)
            existing = next((i for i in latest if i.incident_id == incident_id), None)
            if existing is None:
                related = await self._correlate(event, latest)
                if related is not None:
                    joined, _ = await self._apply_with_retry(related, _as_related(event, related))
                    if not _woken(joined, self._clock.now()):
                        return joined
                    # The author of a change that waited for one joined: plan now, not at the
                    # wait's end (held under the lock, as the sweeper's resume is).
                    return await self._resume(joined)
                # Only an incident about to be opened needs the policy decision; the tags an
                # earlier sighting recorded are in what the query just read.
                judged = await self._runner.judge(received, analyzed, latest)
                incident, _ = decide(received, judged, self._clock.now(), self._policy)
                if not await self._store.create(incident):
                    # Stored already: an older delivery (beyond the newest, or not yet in the
                    # index), or another replica's create a moment ago.
                    existing = await self._store.get(incident_id)
                    if existing is None:
                        return None
        if existing is not None:
            log.info("event.duplicate", state=existing.workflow_state.value)
            self._metrics.suppressions.labels("duplicate").inc()
            return await self._resume(existing, only_if_orphaned=True)
        incident = incident.model_copy(update={"version": 1})
        log.info(
            "incident.opened",
            classification=str(incident.classification),
            state=incident.workflow_state.value,
        )
        self._observe_transition(WorkflowState.RECEIVED, incident)
        # The planner's look at the resource's past is what the correlation query just read.
        return await self._drive(
            incident, KnownIncidents(event.resource_key, tuple(latest), LATEST)
        )

    async def _note_resolution(self, event: NormalizedEvent) -> Incident | None:
        """An alarm back to OK (a Health event closed): say so on what it raised, if anything."""
        raised = await self._store.open_for_resource(event.resource_key)
        if raised is None:
            since = self._clock.now() - self._correlation_window
            recent = await self._store.recent_for_resource(event.resource_key, since)
            raised = recent[0] if recent else None
        if raised is None:
            return None
        noted, _ = await self._apply_with_retry(raised, RelatedEvent(event=event))
        return noted

    async def _note_intended(self, event: NormalizedEvent, ignored: Incident) -> Incident | None:
        """An intended call (NORMAL: a trusted principal's, the agent's, Auto Scaling's) whose
        effect AWS also reports without an author (intake/attribution.py).

        If that report came first and opened an incident that waits for its author, the call
        explains it and it closes. Otherwise the call is recorded (IGNORED), so that a report
        arriving after it joins it instead of opening an incident.
        """
        async with self._locks.hold(event.resource_key):  # ordered with reports on this replica
            waiting = await self._store.open_for_resource(event.resource_key)
            if waiting is not None and waiting.event is not None and explains(event, waiting.event):
                why = "; ".join(ignored.reasons)[:300] or "an intended change"
                details = {**event.details, "explains": why}
                explained = event.model_copy(update={"details": details})
                noted, _ = await self._apply_with_retry(waiting, RelatedEvent(event=explained))
                return noted
            if await self._store.create(ignored):
                return ignored.model_copy(update={"version": 1})
        return await self._store.get(ignored.incident_id)

    async def _correlate(self, event: NormalizedEvent, latest: list[Incident]) -> Incident | None:
        """The incident this event belongs to, if any: one event fan-out, one incident.

        An open incident about the resource takes every further event. A closed one takes the
        events that describe what happened before its recovery began (the CloudTrail call and
        the state changes of one termination arrive minutes apart); an event about a change made
        after the recovery began is a recurrence and opens an incident of its own.

        `latest` is the resource's newest incidents. While an incident about a resource is open,
        further events join it instead of opening new ones, so an open incident is among them.
        """
        open_incident = next((i for i in latest if not i.terminal), None)
        if open_incident is None and len(latest) >= LATEST:
            open_incident = await self._store.open_for_resource(event.resource_key)
        if open_incident is not None:
            return open_incident
        since = self._clock.now() - self._correlation_window
        for recent in (i for i in latest if i.created_at >= since):
            started = [r.started_at for r in recent.recovery_actions]
            boundary = min(started) if started else recent.updated_at
            if event.time <= boundary:
                return recent
            if self._reports(recent, event):
                return recent
        return None

    def _reports(self, recorded: Incident, event: NormalizedEvent) -> bool:
        """`event` (no author) reports the effect of the intended call `recorded` stands for."""
        call = recorded_explanation(recorded, event)
        window = self._correlation_window
        return call is not None and call.time - CLOCK_SKEW <= event.time <= call.time + window

    async def _resume(self, incident: Incident, *, only_if_orphaned: bool = False) -> Incident:
        now = self._clock.now()
        lease_expired = incident.updated_at + self._lease <= now
        wait_due = incident.next_check_at is not None and incident.next_check_at <= now
        if only_if_orphaned and not (incident.pending and lease_expired):
            return incident
        if not incident.pending and not wait_due:
            return incident
        try:
            if incident.pending:
                # Claim it: the version bump fences out any other worker resuming it too.
                claimed = incident.model_copy(update={"updated_at": now, "next_check_at": None})
                incident = await self._store.save(claimed)
                log.info("incident.resumed", pending=[p.get("id") for p in incident.pending])
                return await self._drive(incident)
            return await self._apply(incident, Tick())
        except ConflictError:
            log.info("incident.resume_lost_race")
            return incident

    async def _apply(self, incident: Incident, signal: Signal) -> Incident:
        saved, applied = await self._apply_with_retry(incident, signal)
        return await self._drive(saved) if applied else saved

    async def _apply_with_retry(
        self,
        incident: Incident,
        signal: Signal,
        stored: Incident | None = None,
        at: datetime | None = None,
    ) -> tuple[Incident, bool]:
        """decide + save; on a version conflict, reload and decide again on the fresh copy.

        `stored` is the incident as last stored, when `incident` is a copy decided on since and
        not saved (the version to save over is the same), and `at` the time that copy was
        decided at: this decision is stamped with it too, so that the write appends both
        decisions' timeline entries to the audit trail (a write appends the entries stamped at
        or after its `updated_at`). Returns the incident as stored and
        whether this worker may carry on driving it. A
        signal that the fresh copy no longer accepts (another worker applied the same outcome)
        is dropped. A signal applied to a fresh copy that holds commands this worker did not
        have (another writer put them there: a reviewer's answer, another worker's decision) is
        saved, but those commands are not this worker's to run: their writer runs them, or the
        sweeper once they are due. Running them here as well would run a step twice.
        """
        stored = stored or incident
        ours = incident.pending
        foreign = False
        for _ in range(SAVE_ATTEMPTS):
            try:
                new, _ = decide(incident, signal, at or self._clock.now(), self._policy)
            except InvalidTransition as exc:
                self._metrics.invalid_signals.labels(exc.state.value, exc.signal_kind).inc()
                log.info("signal.dropped", state=exc.state.value, signal=exc.signal_kind)
                return stored, False
            if new == stored:
                return stored, True
            closing = new.terminal and not stored.terminal
            release = lease_key(new) if closing and self._store.keeps_leases() else None
            try:
                if release is not None:
                    # The step lease goes with the closing write: one call, not two.
                    saved = await self._store.save(new, release=release)
                else:
                    saved = await self._store.save(new)
            except ConflictError:
                fresh = await self._store.get(incident.incident_id)
                if fresh is None:
                    return stored, False
                foreign = foreign or any(command not in ours for command in fresh.pending)
                incident = stored = fresh
                at = None
                continue
            self._observe(stored, saved)
            if closing and release is None:
                await self._coord.release(lease_key(saved), saved.incident_id)
            if isinstance(signal, RelatedEvent):
                log.info("event.joined", joined_incident=saved.incident_id)
                self._metrics.suppressions.labels("dedup").inc()
            if foreign:
                log.info("incident.handed_over", pending=[p.get("id") for p in saved.pending])
                return saved, False
            return saved, True
        log.warning("incident.save_contended", signal=signal.kind, attempts=SAVE_ATTEMPTS)
        return stored, False

    async def _drive(self, incident: Incident, known: KnownIncidents | None = None) -> Incident:
        """Run pending commands until none is left or a stored wait begins."""
        self._metrics.in_flight.inc()
        try:
            return await self._drive_rounds(incident, known)
        finally:
            self._metrics.in_flight.dec()

    async def _drive_rounds(self, incident: Incident, known: KnownIncidents | None) -> Incident:
        stored = incident
        decided_at: datetime | None = None  # when `incident`, unsaved, was decided
        for _ in range(MAX_ROUNDS):
            if not incident.pending:
                return incident
            command = command_from_dict(incident.pending[0])
            started = time.monotonic()
            signal = await self._runner.run(incident, command, known=known)
            known = None  # read before the first command: later ones ask again
            self._metrics.step_duration.labels(command.kind).observe(time.monotonic() - started)
            carried = self._without_save(stored, incident, command, signal)
            if carried is not None:
                incident, decided_at = carried, carried.updated_at
                continue
            saved, applied = await self._apply_with_retry(incident, signal, stored, decided_at)
            decided_at = None
            if not applied:
                # Dropped (another worker applied this outcome) or contended: stop here. The
                # worker that holds the incident carries on, or the sweeper after the lease.
                return saved
            incident = stored = saved
        log.error("incident.too_many_rounds", rounds=MAX_ROUNDS)
        return stored

    def _without_save(
        self, stored: Incident, incident: Incident, command: Command, signal: Signal
    ) -> Incident | None:
        """The incident decided on `signal`, to carry on with unsaved; None: save it first.

        Only a verification's outcome whose next command is its notification: resuming from
        `stored` verifies again (read-only) and notifies again, as a stored Notify would. And
        only while the step lease of `stored` outlasts the notification's deadline: otherwise a
        sweeper could resume the incident while this worker still notifies.
        """
        if not isinstance(command, Verify) or incident != stored:
            return None
        try:
            new, _ = decide(incident, signal, self._clock.now(), self._policy)
        except InvalidTransition:
            return None  # the save path drops it and counts it
        if not new.pending or new.next_check_at is not None:
            return None
        nxt = command_from_dict(new.pending[0])
        if not isinstance(nxt, Notify) or len(new.pending) != 1:
            return None
        deadline = timedelta(seconds=self._runner.deadline(nxt))
        if self._clock.now() + deadline >= stored.updated_at + self._lease:
            return None
        return new

    def _observe(self, before: Incident, after: Incident) -> None:
        if before.workflow_state is not after.workflow_state:
            self._observe_transition(before.workflow_state, after)

    def _observe_transition(self, before: WorkflowState, after: Incident) -> None:
        m = self._metrics
        state = after.workflow_state
        rtype = after.resource_type
        m.transitions.labels(before.value, state.value).inc()
        log.info(
            "incident.transition",
            from_state=before.value,
            to_state=state.value,
            detail=_entered(after),
        )
        if state is WorkflowState.AWAITING_APPROVAL:
            m.manual_review(rtype)
        if state is WorkflowState.SUPPRESSED:
            silenced = after.policy is not None and after.policy.silence_id is not None
            m.suppressions.labels("silence" if silenced else "cooldown").inc()
        if (
            after.verification is not None
            and after.verification.status != "PENDING"
            and (state.terminal)
        ):
            m.verification(rtype, after.verification.status)
        if state.terminal:
            m.incident_closed(state.value, rtype, _seconds(after.created_at, after.updated_at))


def _as_related(event: NormalizedEvent, incident: Incident) -> RelatedEvent:
    """`event` joining `incident`; marked as naming the author when it is the CloudTrail record
    of the call behind a change `incident` holds without one."""
    report = incident.event
    if event.principal and report is not None and explains(event, report):
        event = event.model_copy(update={"details": {**event.details, "authors": event.principal}})
    return RelatedEvent(event=event)


def _woken(incident: Incident, now: datetime) -> bool:
    """Made due by the join (an author joined a plan's wait): to be driven now."""
    return (
        incident.authored_by is not None
        and not incident.pending
        and incident.next_check_at is not None
        and incident.next_check_at <= now
        and not incident.terminal
    )


def _entered(incident: Incident) -> str:
    """The detail of the timeline entry that entered the incident's state (one write may hold
    more than one decision: closed by its check, then notified)."""
    entered = ""
    for entry in reversed(incident.timeline):
        if entry.state is not incident.workflow_state:
            break
        entered = entry.detail
    return entered


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())
