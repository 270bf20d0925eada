"""Window arithmetic: aligned, non-overlapping windows, and the overlap's de-duplication."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from aiops_agent.logs.state import message_key


def first_window_start(horizon_ms: int, period_ms: int, backfill: int) -> int:
    """Where a group without a watermark starts: `backfill` whole windows before the horizon."""
    return (horizon_ms // period_ms - backfill) * period_ms


def due_windows(
    watermark_ms: int, horizon_ms: int, period_ms: int, limit: int
) -> list[tuple[int, int]]:
    """The complete windows after the watermark, oldest first, at most `limit`."""
    out: list[tuple[int, int]] = []
    start = watermark_ms
    while start + period_ms <= horizon_ms and len(out) < limit:
        out.append((start, start + period_ms))
        start += period_ms
    return out


def late_arrivals(overlap: Mapping[str, int], taken: Mapping[str, int]) -> Counter[str]:
    """Messages of the overlap span that the previous window did not count (they came late).

    `overlap`: message -> count in [watermark - overlap, watermark) as seen now; `taken`:
    message_key -> count the previous window saw in that same span.
    """
    out: Counter[str] = Counter()
    for message, n in overlap.items():
        extra = n - int(taken.get(message_key(message), 0))
        if extra > 0:
            out[message] = extra
    return out


def tail_counts(tail: Mapping[str, int]) -> dict[str, int]:
    """What a window stores for the next one's de-duplication."""
    return {message_key(m): n for m, n in tail.items()}
