"""The proactive log analyzer loop: every `AIOPS_LOG_POLL_SECONDS`, for each log group it holds
the lease of, analyze the windows that are complete since its watermark.

One window, `[start, start + period)`:
1. count problem messages server-side (Insights) or client-side (FilterLogEvents), in three
   disjoint spans: the overlap before the window (late arrivals, de-duplicated against the counts
   the previous window stored), the body, and the tail (whose counts the next window needs);
   disjoint spans scan each byte once;
2. mine the messages into templates and update each template's detector with its count;
3. commit the watermark (conditional: the window is analyzed once), save the templates;
4. only anomalies are assessed; above `AIOPS_FAILURE_PROBABILITY_THRESHOLD` one proactive alert
   per window goes to SNS, and each template alerts at most once per suppression window.

Liveness: the loop beats between windows and, while a query runs (Insights may take minutes),
every `beat_every_s`, for at most `FETCH_BEAT_LIMIT_S` per query: a query that hangs longer than
any deadline allows turns `/healthz` red. On stop the cycle is abandoned at once (queries are
read-only; an uncommitted window is analyzed again later), running queries are stopped, and the
group leases are released so that another replica takes the groups without waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import uuid
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog
from botocore.exceptions import ClientError

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.ports import ConflictError, Notifier
from aiops_agent.logs.analysis import Anomaly, alert_text, assess
from aiops_agent.logs.assessor import LogAssessor, RulesAssessor
from aiops_agent.logs.budget import ScanBudget
from aiops_agent.logs.detector import Detector, DetectorConfig, SeriesState, Verdict
from aiops_agent.logs.groups import resolve_groups
from aiops_agent.logs.mining import MINER_VERSION, TemplateMiner
from aiops_agent.logs.queries import (
    FilterEventsSource,
    InsightsSource,
    LogSource,
    QueryFailed,
    QueryTimeout,
    WindowCounts,
)
from aiops_agent.logs.state import PatternStore, TemplateRecord, WindowMark
from aiops_agent.logs.windows import due_windows, first_window_start, late_arrivals, tail_counts
from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings
from aiops_agent.sources.stopping import Abandoned, until_stopped

log = structlog.get_logger(__name__)

LOOP_NAME = "log_analyzer"
BEAT_EVERY_S = 15.0
FETCH_BEAT_LIMIT_S = 300.0
"""The longest one count may keep the loop alive without finishing: above any query deadline
(InsightsSource: 120 s, plus waiting for a concurrency slot), below a hang."""
RELEASE_TIMEOUT_S = 5.0


class Clock(Protocol):
    """The clock port (`aiops_agent.engine.clock.SystemClock` fits)."""

    def now(self) -> datetime: ...


@dataclass(frozen=True)
class AnalyzerConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    min_count: int = 5
    """A window count below this is never an anomaly (0 -> 1 is not a spike)."""
    group_min_windows: int = 12
    """Windows a group must have before a new template can alert (warm-up learns templates)."""
    backfill_windows: int = 24
    """Where a group's first watermark starts, in windows before now."""
    max_windows_per_cycle: int = 12
    suppression_s: float = 3600.0
    """A template alerts at most once per this many seconds."""
    daily_scan_budget_bytes: float = 50 * 2**30
    """Shared by all replicas (logs/budget.py); windows past it wait (outcome `budget`) for the
    next UTC day."""
    max_groups_in_flight: int = 4

    def __post_init__(self) -> None:
        if self.backfill_windows < 1 or self.max_windows_per_cycle < 1 or self.min_count < 1:
            raise ValueError("backfill_windows, max_windows_per_cycle and min_count must be >= 1")


NO_ANOMALY = assess([], 1)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class LogAnalyzer:
    def __init__(
        self,
        settings: Settings,
        clients: AwsClients,
        patterns: PatternStore | None,
        notifier: Notifier,
        metrics: Metrics,
        health: Health,
        clock: Clock,
        *,
        source: LogSource | None = None,
        config: AnalyzerConfig | None = None,
        owner: str | None = None,
        assessor: LogAssessor | None = None,
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._patterns = patterns or PatternStore(clients, settings.patterns_table)
        self._notifier = notifier
        self._metrics = metrics
        self._health = health
        self._clock = clock
        self.config = config or AnalyzerConfig(
            detector=DetectorConfig.for_window(
                settings.log_poll_seconds, threshold=settings.anomaly_threshold
            )
        )
        if source is None:
            # The emulators' Insights ignore filter and stats: count through FilterLogEvents.
            insights = settings.log_source == "insights" or (
                settings.log_source == "auto" and settings.aws_endpoint_url is None
            )
            source = InsightsSource(clients) if insights else FilterEventsSource(clients)
        self._source = source
        self.beat_every_s = BEAT_EVERY_S
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._detector = Detector(self.config.detector)
        self._miners: dict[str, TemplateMiner] = {}
        self._assessor = assessor or RulesAssessor()
        self._budget = ScanBudget(self._patterns, self.config.daily_scan_budget_bytes)
        self._held: set[str] = set()
        self.period_ms = max(1, int(settings.log_poll_seconds * 1000))
        self.overlap_ms = min(30_000, self.period_ms // 10)
        self.settle_ms = min(30_000, self.period_ms // 5)

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        if not self._settings.log_groups:
            log.info("logs.analyzer_idle", reason="no AIOPS_LOG_GROUPS")
            return
        self._health.register_loop(LOOP_NAME, max(120.0, 4 * BEAT_EVERY_S))
        try:
            while not stop.is_set():
                self._health.beat(LOOP_NAME)
                try:
                    await until_stopped(self.run_once(), stop)
                except Abandoned:
                    log.info("logs.cycle_abandoned", reason="stopping")
                except Exception:
                    log.exception("logs.cycle_failed")
                await self._wait(stop, self._settings.log_poll_seconds)
        finally:
            self._health.unregister_loop(LOOP_NAME)
            await self.release_leases()

    async def release_leases(self) -> None:
        """Give up every group lease held (at stop), together, bounded."""

        async def release(group: str) -> None:
            try:
                await asyncio.wait_for(
                    self._patterns.release_lease(group, self.owner), RELEASE_TIMEOUT_S
                )
                self._held.discard(group)
            except Exception as exc:
                log.warning("logs.lease_release_failed", log_group=group, error=str(exc))

        async with asyncio.TaskGroup() as tasks:
            for group in sorted(self._held):
                tasks.create_task(release(group))
        log.info("logs.leases_released", unreleased=len(self._held))

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while not stop.is_set():
            left = until - loop.time()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(stop.wait(), min(left, BEAT_EVERY_S))
            except TimeoutError:
                self._health.beat(LOOP_NAME)

    async def run_once(self) -> int:
        """One cycle over every configured group; returns the alerts sent."""
        groups = await resolve_groups(self._clients, self._settings.log_groups)
        await self._budget.refresh(self._clock.now())
        self._metrics.log_scan_budget_used.set(self._budget.used)
        slots = asyncio.Semaphore(self.config.max_groups_in_flight)
        sent: list[int] = []

        async def one(group: str, label: str) -> None:
            async with slots:
                try:
                    sent.append(await self.analyze_group(group, label))
                except Exception as exc:
                    self._metrics.log_windows.labels(outcome="error").inc()
                    log.warning("logs.group_failed", log_group=group, error=repr(exc))

        async with asyncio.TaskGroup() as tasks:
            for group, label in groups:
                tasks.create_task(one(group, label))
        return sum(sent)

    # -- one group -----------------------------------------------------------------------------

    async def analyze_group(self, group: str, label: str | None = None) -> int:
        """Analyze the group's complete windows (if we hold its lease); returns alerts sent."""
        label = label or group
        now = self._clock.now()
        lease_s = 3 * self._settings.log_poll_seconds + 60
        if not await self._patterns.acquire_lease(group, self.owner, lease_s, _ms(now)):
            self._held.discard(group)
            return 0
        self._held.add(group)
        mark, records = await self._patterns.load(group)
        alerts = 0
        if mark.pending_alert is not None:
            try:
                mark = await self._send(group, mark)  # decided earlier, not yet taken by SNS
            except AlertUnsent:
                return 0
            except ConflictError:
                return 0  # another replica sent it and moved on
            alerts += 1
        miner = self._miners.setdefault(group, TemplateMiner())
        for rec in records.values():
            miner.seed(rec.template_id, rec.template)
        period = self.period_ms
        horizon = _ms(now) - self.settle_ms
        first = mark.watermark_ms
        if first is None:
            first = first_window_start(horizon, period, self.config.backfill_windows)
        for start, end in due_windows(first, horizon, period, self.config.max_windows_per_cycle):
            if not self._budget.allows(self._clock.now()):
                self._metrics.log_windows.labels(outcome="budget").inc()
                log.warning("logs.scan_budget_exhausted", used=self._budget.used)
                break
            try:
                mark, sent = await self._window(group, label, mark, records, start, end)
            except (QueryTimeout, QueryFailed) as exc:
                self._metrics.log_windows.labels(outcome="timeout").inc()
                log.warning("logs.window_query_failed", log_group=group, error=str(exc))
                break
            except ConflictError:
                log.info("logs.window_taken", log_group=group, window_start=start)
                break
            except AlertUnsent:
                break  # stored with the window: sent before the group's next one
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
                log.info("logs.group_missing", log_group=group)  # not created yet: no watermark
                break
            finally:
                await self._budget.commit()  # what the window scanned, analyzed or not
                self._metrics.log_scan_budget_used.set(self._budget.used)
            alerts += sent
            self._health.beat(LOOP_NAME)
        self._metrics.log_templates.labels(log_group=label).set(len(records))
        return alerts

    async def _fetch(self, group: str, start: int, end: int) -> WindowCounts:
        if end <= start:
            return WindowCounts()
        counts = await self._beating_while(self._source.count(group, start, end))
        self._metrics.log_bytes_scanned.inc(counts.bytes_scanned)
        self._budget.spend(self._clock.now(), counts.bytes_scanned)
        if counts.truncated:
            log.warning("logs.window_truncated", log_group=group, start_ms=start, end_ms=end)
        return counts

    async def _beating_while(self, work: Awaitable[WindowCounts]) -> WindowCounts:
        """`await work`, beating the loop every `beat_every_s` meanwhile, for at most
        FETCH_BEAT_LIMIT_S (a slow query is progress; a hung one is not)."""
        task = asyncio.ensure_future(work)
        loop = asyncio.get_running_loop()
        until = loop.time() + FETCH_BEAT_LIMIT_S
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.beat_every_s)
                if done:
                    return task.result()
                if loop.time() < until:
                    self._health.beat(LOOP_NAME)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _window(
        self,
        group: str,
        label: str,
        mark: WindowMark,
        records: dict[str, TemplateRecord],
        start: int,
        end: int,
    ) -> tuple[WindowMark, int]:
        overlap = self.overlap_ms
        messages: Counter[str] = Counter()
        if mark.watermark_ms is not None and overlap:
            late = await self._fetch(group, start - overlap, start)
            messages.update(late_arrivals(late.counts, mark.tail))
        body = await self._fetch(group, start, end - overlap)
        tail = await self._fetch(group, end - overlap, end)
        messages.update(body.counts)
        messages.update(tail.counts)

        miner = self._miners.setdefault(group, TemplateMiner())
        per_template: Counter[str] = Counter()
        for message, n in messages.items():
            cluster = miner.add(message)
            cluster.size += n - 1
            per_template[cluster.template_id] += n

        anomalies = self._detect(group, mark, records, miner, per_template, end)
        # The alert is decided before the window is stored and rides in the same write, so a
        # Publish that fails afterwards is sent again, not lost with an analyzed window.
        alert = await self._decide_alert(group, label, records, anomalies, start, end)
        new_mark = WindowMark(
            watermark_ms=end,
            tail=tail_counts(tail.counts),
            windows=mark.windows + 1 if mark.miner_version == MINER_VERSION else 1,
            pending_alert=alert,
        )
        await self._patterns.commit_window(group, mark, new_mark)
        await self._patterns.save_templates(group, records)
        outcome = "ok" if messages else "empty"
        self._metrics.log_windows.labels(outcome=outcome).inc()
        if alert is None:
            return new_mark, 0
        return await self._send(group, new_mark), 1

    async def _send(self, group: str, mark: WindowMark) -> WindowMark:
        """Publish the alert stored with `mark`, then store the mark without it. `AlertUnsent`
        when SNS refuses: the alert stays stored, and the group waits until it is sent."""
        alert = mark.pending_alert or {}
        try:
            await self._notifier.publish(
                str(alert.get("subject", "")),
                str(alert.get("message", "")),
                {str(k): str(v) for k, v in dict(alert.get("attributes") or {}).items()},
            )
        except Exception as exc:
            self._metrics.proactive_alerts_unsent.inc()
            log.warning("logs.alert_unsent", log_group=group, error=repr(exc)[:300])
            raise AlertUnsent(group) from exc
        self._metrics.proactive_alerts.inc()
        log.info(
            "logs.proactive_alert",
            log_group=group,
            failure_probability=dict(alert.get("attributes") or {}).get("failure_probability"),
            templates=alert.get("templates", []),
        )
        sent = dataclasses.replace(mark, pending_alert=None)
        await self._patterns.commit_window(group, mark, sent)
        return sent

    def _detect(
        self,
        group: str,
        mark: WindowMark,
        records: dict[str, TemplateRecord],
        miner: TemplateMiner,
        per_template: Counter[str],
        end: int,
    ) -> list[Anomaly]:
        cfg = self.config
        # A group mined by another miner version re-warms: its templates are spelled anew.
        warmed = mark.windows >= cfg.group_min_windows and mark.miner_version == MINER_VERSION
        founded = {tid for tid in per_template if tid not in records}
        for tid in founded:
            records[tid] = TemplateRecord(tid, miner.clusters[tid].template, {}, 0, end)
        anomalies: list[Anomaly] = []
        for tid, rec in records.items():
            count = per_template.get(tid, 0)
            cluster = miner.clusters.get(tid)
            if cluster is not None:
                rec.template = cluster.template
            state = self._state_of(rec)
            verdict = self._detector.update(state, count)
            rec.detector = state.to_item()
            if count:
                rec.last_seen_ms = end
            if tid in founded:
                if warmed and count >= cfg.min_count:
                    anomalies.append(
                        Anomaly(group, tid, rec.template, "new_template", count, 0, 0, 0, 0.0)
                    )
                    self._metrics.log_anomalies.labels(kind="new_template").inc()
            elif verdict.anomaly and count >= cfg.min_count:
                anomaly = _departure(group, tid, rec.template, count, verdict, state)
                if anomaly is not None:
                    anomalies.append(anomaly)
                    self._metrics.log_anomalies.labels(kind=anomaly.kind).inc()
        return anomalies

    def _state_of(self, rec: TemplateRecord | None) -> SeriesState:
        if rec is None or not rec.detector:
            return self._detector.new_state()
        return self._detector.load(rec.detector)

    async def _decide_alert(
        self,
        group: str,
        label: str,
        records: dict[str, TemplateRecord],
        anomalies: list[Anomaly],
        start: int,
        end: int,
    ) -> dict[str, Any] | None:
        """The proactive alert this window's anomalies make, if any (each template alerts at
        most once per suppression window: its `last_alert_ms` is set here, stored with it)."""
        cfg = self.config
        now_ms = _ms(self._clock.now())
        fresh = [
            a
            for a in anomalies
            if now_ms - records[a.template_id].last_alert_ms >= cfg.suppression_s * 1000
        ]
        result = await self._assessor.assess(fresh, cfg.min_count) if fresh else NO_ANOMALY
        self._metrics.failure_probability.labels(log_group=label).set(result.failure_probability)
        if not fresh or result.failure_probability < self._settings.failure_probability_threshold:
            if anomalies:
                log.info(
                    "logs.anomalies_below_threshold",
                    log_group=group,
                    anomalies=len(anomalies),
                    suppressed=len(anomalies) - len(fresh),
                    failure_probability=result.failure_probability,
                )
            return None
        subject, message = alert_text(group, start, end, fresh, result)
        for a in fresh:
            records[a.template_id].last_alert_ms = now_ms
        return {
            "subject": subject,
            "message": message,
            "attributes": {
                "kind": "proactive_log_alert",
                "log_group": group[:200],
                "failure_probability": f"{result.failure_probability:.2f}",
                "urgency": result.urgency,
                "analyzer": result.analyzer[:100],
            },
            "templates": [a.template_id for a in fresh],
        }


class AlertUnsent(Exception):
    """SNS did not take a proactive alert: it stays stored with the group's watermark."""


def _departure(
    group: str, tid: str, template: str, count: int, verdict: Verdict, state: SeriesState
) -> Anomaly | None:
    """The anomaly a firing verdict stands for; None for a drop (fewer messages is no alert)
    and for a flat line (a count that stops changing says nothing of failures by itself)."""
    if verdict.kind == "flat":
        return None
    if verdict.kind == "level":
        if verdict.level_score <= 0:
            return None
        return Anomaly(
            group,
            tid,
            template,
            "level_shift",
            count,
            verdict.level_median,
            verdict.level_upper,
            len(state.levels) - 1,
            verdict.level_score,
            level=verdict.level,
        )
    if verdict.score <= 0:
        return None
    return Anomaly(
        group,
        tid,
        template,
        "spike",
        count,
        verdict.median,
        verdict.upper,
        len(state.values) - 1,
        verdict.score,
    )
