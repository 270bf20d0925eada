"""Benchmark: the log analyzer's detector on the 17 NAB realAWSCloudwatch series.

    python bench/detect.py [--data ../shared/data/nab] [--out bench/results/detect.json]

The data is not in the repository (research licence): `--data`, else $AIOPS_BENCH_DATA/nab, else
../shared/data/nab (bench/data.py); without it the benchmark says so and exits 2.

Scored per series and summed: labelled windows with at least one alert inside; alert episodes
outside every window (alerts 12 or fewer rows apart form one episode); false episodes per day
(days = last timestamp - first timestamp, summed over series); delay from a window's start to
its first alert. Beside ours, in the same run: the seed's detector (EWMA alpha 0.3 of the value
and of the variance, alert when z > 2 against the baseline before the point) and a rolling robust
z-score (median and MAD of the previous 288 points, alert above 5). One default configuration
for every series; the labels are used for scoring only.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiops_agent.logs.detector import MAD_TO_SIGMA, Detector, DetectorConfig  # noqa: E402
from bench.common import code_version, machine_facts  # noqa: E402
from bench.data import absent, default_dir  # noqa: E402

EPISODE_GAP = 12

Flags = list[bool]


def load_series(path: Path) -> tuple[list[datetime], list[float]]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    return [datetime.fromisoformat(r["timestamp"]) for r in rows], [float(r["value"]) for r in rows]


def ours(values: Sequence[float], config: DetectorConfig | None = None) -> Flags:
    detector = Detector(config)
    state = detector.new_state()
    return [detector.update(state, v).anomaly for v in values]


SWEEP: dict[str, dict[str, Any]] = {
    "level test off": {"level_windows": 0},
    "level_windows 9": {"level_windows": 9},
    "level_windows 16": {"level_windows": 16},
    "level_margin 1.0": {"level_margin": 1.0},
    "level_margin 3.0": {"level_margin": 3.0},
    "level_windows 16, level_margin 3.0": {"level_windows": 16, "level_margin": 3.0},
    "rearm_after 48": {"rearm_after": 48},
    "rearm_after 144": {"rearm_after": 144},
}
"""Neighbours of the default configuration (`--sweep`): is the default on a knife's edge?"""


def seed_ewma(values: Sequence[float]) -> Flags:
    alpha = 0.3
    mean: float | None = None
    var = 0.0
    out: Flags = []
    for x in values:
        if mean is None:
            mean = x
            out.append(False)
            continue
        z = abs(x - mean) / math.sqrt(var) if var > 0 else 0.0
        out.append(z > 2)
        diff = x - mean
        mean += alpha * diff
        var = (1 - alpha) * (var + alpha * diff * diff)
    return out


def robust_z(values: Sequence[float]) -> Flags:
    window = 288
    out: Flags = []
    for i, x in enumerate(values):
        if i < window:
            out.append(False)
            continue
        hist = values[i - window : i]
        med = statistics.median(hist)
        mad = statistics.median(abs(v - med) for v in hist) * MAD_TO_SIGMA
        out.append(mad > 0 and abs(x - med) / mad > 5)
    return out


def score(
    detector: Callable[[Sequence[float]], Flags], data: Path, windows: dict[str, Any]
) -> dict[str, Any]:
    found = total = false_episodes = 0
    days = 0.0
    delays: list[float] = []
    per_series: dict[str, Any] = {}
    started = time.perf_counter()
    for key, spans in sorted(windows.items()):
        name = key.split("/")[-1]
        stamps, values = load_series(data / name)
        flags = detector(values)
        ranges = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in spans]
        s_found = 0
        for start, end in ranges:
            hits = [t for t, f in zip(stamps, flags, strict=True) if f and start <= t <= end]
            if hits:
                s_found += 1
                delays.append((hits[0] - start).total_seconds() / 60)
        s_false = 0
        last: int | None = None
        for i, (t, flag) in enumerate(zip(stamps, flags, strict=True)):
            if flag and not any(a <= t <= b for a, b in ranges):
                if last is None or i - last > EPISODE_GAP:
                    s_false += 1
                last = i
        s_days = (stamps[-1] - stamps[0]).total_seconds() / 86400
        per_series[name] = {
            "windows": len(ranges),
            "found": s_found,
            "false_episodes": s_false,
            "alerts": sum(flags),
        }
        found += s_found
        total += len(ranges)
        false_episodes += s_false
        days += s_days
    return {
        "windows_found": found,
        "windows": total,
        "false_episodes": false_episodes,
        "days": round(days, 2),
        "false_episodes_per_day": round(false_episodes / days, 3),
        "median_delay_minutes": statistics.median(delays) if delays else None,
        "mean_delay_minutes": round(statistics.fmean(delays), 1) if delays else None,
        "seconds": round(time.perf_counter() - started, 2),
        "per_series": per_series,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_dir("nab"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "detect.json")
    parser.add_argument(
        "--sweep", action="store_true", help="also score neighbours of the default configuration"
    )
    args = parser.parse_args(argv)
    labels = args.data / "combined_windows_realAWSCloudwatch.json"
    if absent("detect", "NAB realAWSCloudwatch", args.data, labels):
        return 2
    windows = json.loads(labels.read_text())
    results = {
        "ours": score(ours, args.data, windows),
        "seed_ewma": score(seed_ewma, args.data, windows),
        "robust_z_288": score(robust_z, args.data, windows),
    }
    for name, res in results.items():
        print(
            f"{name:14s} windows {res['windows_found']}/{res['windows']}  "
            f"false episodes {res['false_episodes']} ({res['false_episodes_per_day']}/day)  "
            f"median delay {res['median_delay_minutes']} min"
        )
    if args.sweep:
        sweep: dict[str, Any] = {}
        for label, change in SWEEP.items():
            config = replace(DetectorConfig(), **change)
            res = score(partial(ours, config=config), args.data, windows)
            res.pop("per_series")
            sweep[label] = res
            print(
                f"  sweep {label:36s} windows {res['windows_found']}/{res['windows']}  "
                f"false episodes {res['false_episodes']} ({res['false_episodes_per_day']}/day)"
            )
        results["ours_sweep"] = sweep
    document = {"benchmark": "detect", "code": code_version(), "machine": machine_facts()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**document, **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
