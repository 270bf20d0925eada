"""The analyzer's state in the patterns table: baselines that survive a restart, watermarks,
and leases shared by two analyzers (each window analyzed once)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.ports import ConflictError
from aiops_agent.logs import AnalyzerConfig, LogAnalyzer
from aiops_agent.logs.mining import MINER_VERSION
from aiops_agent.logs.state import PatternStore, WindowMark
from aiops_agent.notify.sns import LogNotifier
from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings
from aiops_agent.store.tables import PATTERNS_ATTRIBUTE_DEFINITIONS, PATTERNS_KEY_SCHEMA

BASE = (int(time.time()) - 3600) * 1000
"""An hour ago, on a whole second (the emulator, like AWS, refuses events older than 14 days)."""


class FixedClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)


async def _table(aws: AwsClients, name: str) -> None:
    ddb = await aws.client("dynamodb")
    await ddb.create_table(
        TableName=name,
        KeySchema=PATTERNS_KEY_SCHEMA,
        AttributeDefinitions=PATTERNS_ATTRIBUTE_DEFINITIONS,
        BillingMode="PAY_PER_REQUEST",
    )


async def _write(aws: AwsClients, group: str, events: list[tuple[int, str]]) -> None:
    logs = await aws.client("logs")
    try:
        await logs.create_log_group(logGroupName=group)
        await logs.create_log_stream(logGroupName=group, logStreamName="s")
    except Exception as exc:
        assert "AlreadyExists" in repr(exc)
    await logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": ts, "message": m} for ts, m in sorted(events)],
    )


def _analyzer(
    aws: AwsClients,
    moto: str,
    unique: str,
    group: str,
    clock: FixedClock,
    owner: str,
    max_windows: int = 50,
    budget: float = 50 * 2**30,
    notifier: LogNotifier | None = None,
) -> tuple[LogAnalyzer, LogNotifier]:
    settings = Settings(
        aws_endpoint_url=moto,
        log_groups=[group],
        log_poll_seconds=1,
        patterns_table=f"patterns-{unique}",
    )
    notifier = notifier or LogNotifier()
    config = AnalyzerConfig(
        backfill_windows=6, max_windows_per_cycle=max_windows, daily_scan_budget_bytes=budget
    )
    metrics = Metrics()
    analyzer = LogAnalyzer(
        settings, aws, None, notifier, metrics, Health(metrics), clock, config=config, owner=owner
    )
    return analyzer, notifier


async def test_baselines_and_watermark_survive_a_restart(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    await _table(aws, f"patterns-{unique}")
    group = f"/aiops/state/{unique}"
    events = [
        (BASE + w * 1000 + i, f"ERROR upstream timeout id={w}{i}")
        for w in range(6)
        for i in range(2)
    ]
    await _write(aws, group, events)
    clock = FixedClock(BASE + 6 * 1000 + 500)
    first, _ = _analyzer(aws, moto_endpoint, unique, group, clock, "replica-a")
    await first.analyze_group(group)

    store = PatternStore(aws, f"patterns-{unique}")
    mark, templates = await store.load(group)
    assert mark.watermark_ms == BASE + 6 * 1000  # the 6 backfilled windows, all complete
    assert mark.windows == 6
    assert len(templates) == 1
    (record,) = templates.values()
    assert record.template == "ERROR upstream timeout id=<*>"
    assert record.detector["seen"] == 6  # one update per window since the template appeared

    # A restart: a new analyzer object, same table. It continues from the watermark and the
    # stored baseline (same template id, history grows), re-analyzing nothing.
    await _write(
        aws, group, [(BASE + 6 * 1000 + i, f"ERROR upstream timeout id=9{i}") for i in range(2)]
    )
    clock.ms += 1000
    second, _ = _analyzer(aws, moto_endpoint, unique, group, clock, "replica-a")
    await second.analyze_group(group)
    mark2, templates2 = await store.load(group)
    assert mark2.watermark_ms == BASE + 7 * 1000
    assert mark2.windows == 7
    assert set(templates2) == set(templates)
    assert templates2[record.template_id].detector["seen"] == 7
    assert templates2[record.template_id].detector["values"].endswith("2,2")


async def test_two_analyzers_share_a_group_through_the_lease(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    await _table(aws, f"patterns-{unique}")
    group = f"/aiops/lease/{unique}"
    await _write(aws, group, [(BASE + w * 1000, f"ERROR disk {w} failing") for w in range(4)])
    clock = FixedClock(BASE + 4 * 1000 + 500)
    a, _ = _analyzer(aws, moto_endpoint, unique, group, clock, "replica-a")
    b, _ = _analyzer(aws, moto_endpoint, unique, group, clock, "replica-b", max_windows=3)

    await a.analyze_group(group)
    await b.analyze_group(group)  # the lease is a's: b does nothing
    store = PatternStore(aws, f"patterns-{unique}")
    mark, _ = await store.load(group)
    assert mark.windows == 6  # each window once (BASE - 2 s .. BASE + 4 s)
    assert await store.acquire_lease(group, "replica-b", 10, clock.ms) is False
    assert await store.acquire_lease(group, "replica-a", 10, clock.ms) is True  # renewal

    # a's lease expires (a died): b takes over and continues from the same watermark.
    clock.ms += 64 * 1000  # past a's lease (3 periods + 60 s)
    await b.analyze_group(group)
    mark_b, _ = await store.load(group)
    assert mark.watermark_ms is not None
    assert mark_b.watermark_ms == mark.watermark_ms + 3 * 1000  # 3 windows per cycle for b
    assert mark_b.windows == 6 + 3


async def test_the_watermark_moves_only_from_the_value_read(aws: AwsClients, unique: str) -> None:
    await _table(aws, f"patterns-{unique}")
    store = PatternStore(aws, f"patterns-{unique}")
    group = f"/aiops/wm/{unique}"
    fresh = WindowMark()
    first = WindowMark(watermark_ms=BASE, tail={"k": 1}, windows=1)
    await store.commit_window(group, fresh, first)
    with pytest.raises(ConflictError):
        await store.commit_window(group, fresh, first)  # a second "first" commit loses
    second = WindowMark(watermark_ms=BASE + 1000, windows=2)
    await store.commit_window(group, first, second)
    with pytest.raises(ConflictError):
        await store.commit_window(group, first, WindowMark(watermark_ms=BASE + 1000, windows=2))
    mark, _ = await store.load(group)
    assert (mark.watermark_ms, mark.windows, mark.tail) == (BASE + 1000, 2, {})


async def test_a_group_that_does_not_exist_yet_is_skipped_without_a_watermark(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    await _table(aws, f"patterns-{unique}")
    group = f"/aiops/missing/{unique}"
    analyzer, notifier = _analyzer(
        aws, moto_endpoint, unique, group, FixedClock(BASE + 10_000), "replica-a"
    )
    assert await analyzer.run_once() == 0
    mark, templates = await PatternStore(aws, f"patterns-{unique}").load(group)
    assert mark.watermark_ms is None and templates == {}
    assert not notifier.sent


async def test_a_group_mined_by_an_older_miner_re_warms_instead_of_paging(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    await _table(aws, f"patterns-{unique}")
    store = PatternStore(aws, f"patterns-{unique}")
    burst = [(BASE + i, f"FATAL out of memory in worker {i}") for i in range(20)]
    sent: dict[int, int] = {}
    for version in (1, MINER_VERSION):  # 1: the item predates the header-aware miner
        group = f"/aiops/upgrade/{unique}/v{version}"
        warm = WindowMark(watermark_ms=BASE, windows=50, miner_version=version)
        await store.commit_window(group, WindowMark(), warm)
        await _write(aws, group, [(ts + 1000, m) for ts, m in burst])
        clock = FixedClock(BASE + 2 * 1000 + 500)
        analyzer, notifier = _analyzer(aws, moto_endpoint, unique, group, clock, "replica-a")
        await analyzer.analyze_group(group)
        sent[version] = len(notifier.sent)
        mark, _ = await store.load(group)
        assert mark.watermark_ms == BASE + 2 * 1000 and mark.miner_version == MINER_VERSION
        assert mark.windows == (2 if version == 1 else 52)  # two windows: empty, then the burst
    assert sent == {1: 0, MINER_VERSION: 1}  # the same burst pages only on a warmed group


async def test_replicas_share_one_scan_budget_in_the_table(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    await _table(aws, f"patterns-{unique}")
    store = PatternStore(aws, f"patterns-{unique}")
    assert await store.scanned_on("2020-01-01") == 0
    assert await store.add_scanned("2020-01-01", 1000) == 1000
    assert await store.add_scanned("2020-01-01", 234) == 1234
    assert await store.scanned_on("2020-01-01") == 1234
    assert await store.scanned_on("2020-01-02") == 0

    # Two analyzers on two groups: a scans past the day's budget, so b, a different replica
    # with nothing scanned itself, starts no window.
    groups = [f"/aiops/budget/{unique}/{name}" for name in ("a", "b")]
    for group in groups:
        await _write(aws, group, [(BASE + w * 1000, f"ERROR disk {w} failing") for w in range(3)])
    clock = FixedClock(BASE + 3 * 1000 + 500)
    marks: dict[str, int | None] = {}
    for group, owner in zip(groups, ("replica-a", "replica-b"), strict=True):
        analyzer, _ = _analyzer(aws, moto_endpoint, unique, group, clock, owner, budget=10)
        await analyzer.run_once()
        mark, _ = await store.load(group)
        marks[group] = mark.watermark_ms
    # a: the empty backfill windows, then the first with 20 bytes, and no further; b: none.
    assert marks == {groups[0]: BASE + 1000, groups[1]: None}
    today = clock.now().strftime("%Y-%m-%d")
    assert await store.scanned_on(today) == len(b"ERROR disk 0 failing")


class RefusingOnce(LogNotifier):
    """SNS refuses the first Publish (throttled, a KMS key, a network fault)."""

    refused = 0

    async def publish(
        self, subject: str, message: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        if not self.refused:
            self.refused += 1
            raise ConnectionError("sns unreachable")
        await super().publish(subject, message, attributes)


async def test_an_alert_sns_refused_is_kept_with_its_window_and_sent_next_cycle(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    await _table(aws, f"patterns-{unique}")
    store = PatternStore(aws, f"patterns-{unique}")
    group = f"/aiops/unsent/{unique}"
    await store.commit_window(group, WindowMark(), WindowMark(watermark_ms=BASE, windows=50))
    burst = [(BASE + 1000 + i, f"FATAL out of memory in worker {i}") for i in range(20)]
    await _write(aws, group, burst)
    clock = FixedClock(BASE + 2 * 1000 + 500)
    notifier = RefusingOnce()
    analyzer, _ = _analyzer(
        aws, moto_endpoint, unique, group, clock, "replica-a", notifier=notifier
    )

    assert await analyzer.analyze_group(group) == 0  # decided, stored, refused
    mark, _ = await store.load(group)
    assert mark.watermark_ms == BASE + 2 * 1000  # the windows are analyzed, once
    assert mark.pending_alert is not None and "out of memory" in mark.pending_alert["message"]
    assert notifier.refused == 1 and not notifier.sent
    unsent = analyzer._metrics.registry.get_sample_value("aiops_proactive_alerts_unsent_total")
    assert unsent == 1

    assert await analyzer.analyze_group(group) == 1  # the next cycle sends it
    (note,) = notifier.sent
    assert note.attributes["kind"] == "proactive_log_alert"
    assert "out of memory" in note.message
    mark, _ = await store.load(group)
    assert mark.pending_alert is None and mark.watermark_ms == BASE + 2 * 1000

    assert await analyzer.analyze_group(group) == 0  # and only once
    assert len(notifier.sent) == 1
