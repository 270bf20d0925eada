"""Benchmark: Logs Insights bytes scanned per day for 10 log groups, ours vs the seed's schedule.

    python bench/logscan_cost.py [--gib-per-group-day 5] [--out bench/results/logscan_cost.json]

A simulated day at the default period (AIOPS_LOG_POLL_SECONDS=300) over 10 log groups that each
ingest the same bytes per second. Each query is charged the bytes ingested in its time range
(Insights bills bytes scanned in the queried range, whatever the filter). The seed re-queries the
last hour every 5 minutes. Ours queries each window once, through the analyzer's own window
arithmetic and spans: the overlap before the window (late arrivals), the body and the tail.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiops_agent.logs.windows import due_windows, first_window_start  # noqa: E402

DAY_MS = 86_400_000
GROUPS = 10
PERIOD_S = 300
PRICE_PER_GB = 0.005
"""US East Logs Insights price per GB scanned."""


def seed_spans(day_start: int) -> list[tuple[int, int]]:
    period = PERIOD_S * 1000
    return [(t - 3_600_000, t) for t in range(day_start + period, day_start + DAY_MS + 1, period)]


def our_spans(day_start: int) -> list[tuple[int, int]]:
    """Every span the analyzer queries over the day, cycle by cycle, as analyzer.py does."""
    period = PERIOD_S * 1000
    overlap = min(30_000, period // 10)
    settle = min(30_000, period // 5)
    spans: list[tuple[int, int]] = []
    watermark: int | None = None
    for now in range(day_start + period, day_start + DAY_MS + 1, period):
        horizon = now - settle
        first = watermark if watermark is not None else first_window_start(horizon, period, 1)
        for start, end in due_windows(first, horizon, period, limit=12):
            if watermark is not None:
                spans.append((start - overlap, start))
            spans.append((start, end - overlap))
            spans.append((end - overlap, end))
            watermark = end
    return spans


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib-per-group-day", type=float, default=5.0)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "logscan_cost.json"
    )
    args = parser.parse_args(argv)
    rate = args.gib_per_group_day * 2**30 / DAY_MS  # bytes per ms, per group
    day_start = 1_767_225_600_000
    results = {}
    for name, spans in (("seed", seed_spans(day_start)), ("ours", our_spans(day_start))):
        per_group = sum(end - start for start, end in spans) * rate
        total = per_group * GROUPS
        results[name] = {
            "queries_per_group_day": len(spans),
            "bytes_scanned_per_day": round(total),
            "gib_scanned_per_day": round(total / 2**30, 2),
            "scan_factor": round(per_group / (args.gib_per_group_day * 2**30), 3),
            "usd_per_day": round(total / 1e9 * PRICE_PER_GB, 2),
        }
        print(name, results[name])
    results["ratio_seed_over_ours"] = round(
        results["seed"]["bytes_scanned_per_day"] / results["ours"]["bytes_scanned_per_day"], 2
    )
    results["assumptions"] = {
        "groups": GROUPS,
        "gib_ingested_per_group_day": args.gib_per_group_day,
        "period_s": PERIOD_S,
        "usd_per_gb_scanned": PRICE_PER_GB,
    }
    print("seed / ours:", results["ratio_seed_over_ours"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
