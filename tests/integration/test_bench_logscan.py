"""The log-scan benchmark drives the real analyzer: each byte of a group is scanned once, but
for the small overlap before each window that catches late arrivals."""

from __future__ import annotations

from bench.logscan_cost import PERIOD_S, RecordingSource, simulate


async def test_the_analyzer_scans_each_span_once_plus_its_overlap(
    monkeypatch: object,
) -> None:
    seen: list[RecordingSource] = []
    original = RecordingSource.__init__

    def keep(self: RecordingSource, bytes_per_ms: float) -> None:
        original(self, bytes_per_ms)
        seen.append(self)

    RecordingSource.__init__ = keep  # type: ignore[method-assign]
    try:
        result = await simulate(gib_per_group_day=5.0, groups=2, hours=2)
    finally:
        RecordingSource.__init__ = original  # type: ignore[method-assign]

    (source,) = seen
    period = PERIOD_S * 1000
    overlap = min(30_000, period // 10)
    assert len(source.spans) == 2
    for spans in source.spans.values():
        ordered = sorted(spans)
        covered_from, covered_to = ordered[0][0], max(end for _, end in ordered)
        # No gap: every instant from the backfill's start to the last window is queried...
        reach = covered_from
        for start, end in ordered:
            assert start <= reach, f"a gap before {start}"
            reach = max(reach, end)
        # ...and nothing twice, but for one overlap before each window after the first.
        windows = round((covered_to - covered_from) / period)
        scanned = sum(end - start for start, end in ordered)
        assert scanned == (covered_to - covered_from) + (windows - 1) * overlap
    assert result["ratio_seed_over_ours"] > 1
    assert result["ours"]["scan_factor"] < result["seed"]["scan_factor"]
