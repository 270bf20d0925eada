"""Benchmark: the detector decided on one NAB group, reported on the groups it never saw.

    python -m bench.detector_holdout [--data DIR] [--out bench/results/detector_holdout.json]

The protocol (issue 15). Every choice in aiops_agent/logs/detector.py (its tests, its constants)
is made looking at one group only, `TUNED_ON` (realAWSCloudwatch, in `<data>/nab`: the closest
to what the agent watches). The other groups (`<data>/nab-more`: realTraffic, realAdExchange,
artificialWithAnomaly, artificialNoAnomaly) are scored, never tuned on; the figure that counts is
theirs. The same run scores the tuned group too, side by side: a change that raises the in-sample
figure and not the out-of-group ones is overfitting.

Scoring, per series then summed per group, the definitions of bench/detect.py unchanged:
- a labelled window is found when at least one alert falls inside it;
- a false episode is a run of alerts outside every window, alerts `EPISODE_GAP` (12) or fewer
  rows apart forming one episode; per day = false episodes / days, days = last - first timestamp
  summed over the group's series;
- alerts per day = every alert, windows or not (the budget on artificialNoAnomaly, which has no
  window: every alert there is false);
- lead time: for each found window, the first alert inside it minus NAB's labelled anomaly point
  in that window (combined_labels), not the window's start; negative = before the point; and
  how many windows were found within an hour of their point, either side (a stricter count).

Targets (issue 15): on every group but `TUNED_ON`, >= 80 % of windows at <= 0.3 false episodes
per day; <= 0.1 alerts per day on artificialNoAnomaly. The data directory comes from `--data`, or
`AIOPS_BENCH_DATA`, default `../shared/data` beside the repository; absent, the run says so and
exits 2. Results: JSON (with the git commit of the detector that made them) and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiops_agent.logs.detector import Detector, DetectorConfig, typical_window  # noqa: E402
from bench.common import code_version, machine_facts  # noqa: E402
from bench.detect import EPISODE_GAP, load_series, seed_ewma  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
ENV_DATA = "AIOPS_BENCH_DATA"
TUNED_ON = "realAWSCloudwatch"
TARGET_FOUND = 0.8
TARGET_FALSE_PER_DAY = 0.3
TARGET_QUIET_ALERTS_PER_DAY = 0.1
QUIET_GROUP = "artificialNoAnomaly"
NEAR_POINT_MINUTES = 60
"""A found window whose first alert is this close to the labelled point, either side: NAB's
windows are wide (a tenth of the series over its anomalies), so a hit far from the point may be
a false alarm that fell inside it."""

Stamps = list[datetime]
Runner = Callable[[Stamps, list[float]], list[bool]]


@dataclass(frozen=True)
class Group:
    name: str
    folder: str
    """Where the CSVs are, relative to the data directory."""
    windows_file: str
    labels_file: str


GROUPS: tuple[Group, ...] = (
    Group(
        "realAWSCloudwatch",
        "nab",
        "nab/combined_windows_realAWSCloudwatch.json",
        "nab/combined_labels_realAWSCloudwatch.json",
    ),
    *(
        Group(
            name,
            f"nab-more/{name}",
            "nab-more/combined_windows.json",
            "nab-more/combined_labels.json",
        )
        for name in ("realTraffic", "realAdExchange", "artificialWithAnomaly", QUIET_GROUP)
    ),
)


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def group_entries(
    data: Path, group: Group
) -> list[tuple[Path, list[tuple[datetime, datetime]], list[datetime]]]:
    """(csv, windows, label points) of every series of `group`, by file name."""
    windows: dict[str, list[list[str]]] = json.loads((data / group.windows_file).read_text())
    labels: dict[str, list[str]] = json.loads((data / group.labels_file).read_text())
    out = []
    for key in sorted(k for k in windows if k.split("/")[0] == group.name):
        spans = [(_stamp(a), _stamp(b)) for a, b in windows[key]]
        points = [_stamp(p) for p in labels.get(key, [])]
        out.append((data / group.folder / key.split("/")[-1], spans, points))
    return out


def score_series(
    stamps: Stamps,
    flags: Sequence[bool],
    spans: list[tuple[datetime, datetime]],
    points: list[datetime],
) -> dict[str, Any]:
    found = 0
    leads: list[float] = []
    for start, end in spans:
        hits = [t for t, f in zip(stamps, flags, strict=True) if f and start <= t <= end]
        if not hits:
            continue
        found += 1
        inside = [p for p in points if start <= p <= end]
        if inside:
            leads.append((hits[0] - inside[0]).total_seconds() / 60)
    false_episodes = 0
    last: int | None = None
    for i, (t, flag) in enumerate(zip(stamps, flags, strict=True)):
        if flag and not any(a <= t <= b for a, b in spans):
            if last is None or i - last > EPISODE_GAP:
                false_episodes += 1
            last = i
    return {
        "windows": len(spans),
        "found": found,
        "false_episodes": false_episodes,
        "alerts": sum(flags),
        "days": (stamps[-1] - stamps[0]).total_seconds() / 86400,
        "delays_from_point_minutes": leads,
    }


def score_group(runner: Runner, data: Path, group: Group) -> dict[str, Any]:
    per_series: dict[str, Any] = {}
    points = 0
    seconds = 0.0
    for path, spans, labels in group_entries(data, group):
        stamps, values = load_series(path)
        started = time.perf_counter()
        flags = runner(stamps, values)
        seconds += time.perf_counter() - started
        points += len(values)
        per_series[path.name] = score_series(stamps, flags, spans, labels)
    rows = per_series.values()
    windows = sum(r["windows"] for r in rows)
    found = sum(r["found"] for r in rows)
    false_episodes = sum(r["false_episodes"] for r in rows)
    alerts = sum(r["alerts"] for r in rows)
    days = sum(r["days"] for r in rows)
    delays = [d for r in rows for d in r["delays_from_point_minutes"]]
    return {
        "series": len(per_series),
        "windows": windows,
        "windows_found": found,
        "found_share": round(found / windows, 3) if windows else None,
        "false_episodes": false_episodes,
        "days": round(days, 2),
        "false_episodes_per_day": round(false_episodes / days, 3) if days else None,
        "alerts_per_day": round(alerts / days, 3) if days else None,
        "median_delay_from_point_minutes": statistics.median(delays) if delays else None,
        "alerts_before_point": sum(d < 0 for d in delays),
        "found_within_hour_of_point": sum(abs(d) <= NEAR_POINT_MINUTES for d in delays),
        "found_with_point": len(delays),
        "points": points,
        "microseconds_per_point": round(seconds / points * 1e6, 1) if points else None,
        "per_series": {name: {**r, "days": round(r["days"], 2)} for name, r in per_series.items()},
    }


def meets(group: str, res: dict[str, Any]) -> bool:
    """The issue's target for one out-of-group result."""
    if group == QUIET_GROUP:
        return bool(res["alerts_per_day"] <= TARGET_QUIET_ALERTS_PER_DAY)
    return bool(
        res["found_share"] >= TARGET_FOUND and res["false_episodes_per_day"] <= TARGET_FALSE_PER_DAY
    )


def ours(stamps: Stamps, values: list[float]) -> list[bool]:
    """The detector as `aiops-agent detect` runs it: default configuration for the series'
    window length (the median gap between its timestamps), one row per window."""
    detector = Detector(DetectorConfig.for_window(typical_window(stamps) or 300.0))
    state = detector.new_state()
    return [detector.update(state, v).anomaly for v in values]


def neighbour(change: Callable[[DetectorConfig], DetectorConfig]) -> Runner:
    """`ours` with its configuration for the series changed by `change`."""

    def runner(stamps: Stamps, values: list[float]) -> list[bool]:
        config = change(DetectorConfig.for_window(typical_window(stamps) or 300.0))
        detector = Detector(config)
        state = detector.new_state()
        return [detector.update(state, v).anomaly for v in values]

    return runner


SWEEP: dict[str, Callable[[DetectorConfig], DetectorConfig]] = {
    "margin 0.25": lambda c: replace(c, margin=0.25),
    "margin 1.0": lambda c: replace(c, margin=1.0),
    "level_margin 1.0": lambda c: replace(c, level_margin=1.0),
    "level_margin 3.0": lambda c: replace(c, level_margin=3.0),
    "season_gain 0.35": lambda c: replace(c, season_gain=0.35),
    "season_gain 0.7": lambda c: replace(c, season_gain=0.7),
    "season off": lambda c: replace(c, season=0),
    "rearm x0.5": lambda c: replace(c, rearm_after=max(1, c.rearm_after // 2)),
    "rearm x2": lambda c: replace(c, rearm_after=c.rearm_after * 2),
    "alarm_budget 0.2": lambda c: replace(c, alarm_budget=0.2),
    "alarm_budget 0.01": lambda c: replace(c, alarm_budget=0.01),
    "history x2/3": lambda c: replace(c, history=c.history * 2 // 3),
}
"""Neighbours of the default (`--sweep`), scored on every group: not to choose a default (that
is decided on the tuned group alone) but to show whether the out-of-group figures sit on a
knife's edge."""


RUNNERS: dict[str, Runner] = {
    "ours": ours,
    "seed_ewma": lambda _stamps, values: seed_ewma(values),
}


def commit_label(code: dict[str, Any]) -> str:
    """`<commit>`, or `<commit>+dirty` when the code measured differed from it."""
    return f"{code['commit']}+dirty" if code.get("dirty") else str(code["commit"])


def run(data: Path, runners: dict[str, Runner], only: list[str] | None = None) -> dict[str, Any]:
    groups = [g for g in GROUPS if only is None or g.name in only]
    results: dict[str, Any] = {}
    for name, runner in runners.items():
        results[name] = {g.name: score_group(runner, data, g) for g in groups}
    return {
        "benchmark": "detector_holdout",
        "code": (code := code_version()),
        "machine": machine_facts(),
        "commit": commit_label(code),
        "tuned_on": TUNED_ON,
        "episode_gap_rows": EPISODE_GAP,
        "targets": {
            "found_share": TARGET_FOUND,
            "false_episodes_per_day": TARGET_FALSE_PER_DAY,
            f"{QUIET_GROUP}_alerts_per_day": TARGET_QUIET_ALERTS_PER_DAY,
        },
        "detectors": results,
    }


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Detector: tuned on {doc['tuned_on']}, reported on the groups it never saw",
        "",
        f"Commit `{doc['commit']}`. Target out of group: >= {TARGET_FOUND:.0%} of windows at "
        f"<= {TARGET_FALSE_PER_DAY} false episodes/day; <= {TARGET_QUIET_ALERTS_PER_DAY} "
        f"alerts/day on {QUIET_GROUP}. Lead = first alert in a found window minus NAB's "
        "labelled point (minutes; negative = before it).",
        "",
        "| detector | group | sample | windows found | within 1 h of point | false episodes/day "
        "| alerts/day | median lead min | before point | us/point | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for det, groups in doc["detectors"].items():
        for group, r in groups.items():
            sample = "in-sample (tuned)" if group == doc["tuned_on"] else "out of group"
            target = "-" if group == doc["tuned_on"] else ("met" if meets(group, r) else "NOT met")
            lead = r["median_delay_from_point_minutes"]
            lines.append(
                f"| {det} | {group} | {sample} | {r['windows_found']}/{r['windows']} "
                f"| {r['found_within_hour_of_point']}/{r['windows']} "
                f"| {r['false_episodes_per_day']} | {r['alerts_per_day']} "
                f"| {'-' if lead is None else round(lead)} "
                f"| {r['alerts_before_point']}/{r['found_with_point']} "
                f"| {r['microseconds_per_point']} | {target} |"
            )
    return "\n".join(lines) + "\n"


def report_lines(doc: dict[str, Any]) -> list[str]:
    """docs/BENCHMARKS.md's section: the table of `markdown` without its title."""
    return [*markdown(doc).splitlines()[2:], "", "Method: `bench/detector_holdout.py`."]


def target_row(doc: dict[str, Any]) -> list[Any]:
    """docs/BENCHMARKS.md's targets row: every group but the tuned one, for our detector."""
    ours_groups = doc["detectors"]["ours"]
    held = {g: r for g, r in ours_groups.items() if g != doc["tuned_on"]}
    failed = [g for g, r in held.items() if not meets(g, r)]
    shown = "; ".join(
        f"{g} {r['alerts_per_day']}/day"
        if g == QUIET_GROUP
        else f"{g} {r['windows_found']}/{r['windows']} at {r['false_episodes_per_day']}"
        for g, r in held.items()
    )
    return [
        f"detector out of group (tuned on {doc['tuned_on']})",
        f">= {TARGET_FOUND:.0%} at <= {TARGET_FALSE_PER_DAY}/day; quiet <= "
        f"{TARGET_QUIET_ALERTS_PER_DAY} alerts/day",
        shown,
        not failed and len(held) == len(GROUPS) - 1,
        f"not met on {', '.join(failed)}" if failed else "",
    ]


def data_dir(flag: Path | None) -> Path:
    if flag is not None:
        return flag
    env = os.environ.get(ENV_DATA)
    return Path(env) if env else DEFAULT_DATA


def missing(data: Path) -> list[str]:
    return [
        str(data / f)
        for g in GROUPS
        for f in (g.folder, g.windows_file, g.labels_file)
        if not (data / f).exists()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=None, help=f"default ${ENV_DATA} or ../shared/data"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "detector_holdout.json"
    )
    parser.add_argument(
        "--groups",
        nargs="*",
        default=None,
        help="only these groups (default: all, in-sample first)",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="also score neighbours of the default (SWEEP)"
    )
    args = parser.parse_args(argv)
    data = data_dir(args.data)
    absent = missing(data)
    if absent:
        print(
            f"detector_holdout: NAB data absent under {data} (set --data or ${ENV_DATA}); "
            f"missing: {', '.join(absent)}",
            file=sys.stderr,
        )
        return 2
    runners = dict(RUNNERS)
    if args.sweep:
        runners.update({f"ours, {k}": neighbour(change) for k, change in SWEEP.items()})
    doc = run(data, runners, args.groups)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    table = markdown(doc)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
